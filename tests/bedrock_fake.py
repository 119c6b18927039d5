"""A small fake of Bedrock's control plane for the batch-job calls moto does not implement.

moto 5 has no `ListModelInvocationJobs`, `GetModelInvocationJob` or batch-job `ListTagsForResource`, so tests point
boto3 at this server with `AWS_ENDPOINT_URL_BEDROCK` (S3 stays on moto). It speaks the REST-JSON protocol of the
botocore model (paths, query strings, JSON bodies, error `x-amzn-ErrorType` headers):

- `GET /model-invocation-jobs?submitTimeAfter=…&submitTimeBefore=…&maxResults=…&nextToken=…`
- `GET /model-invocation-job/{jobIdentifier}` (ARN, URL-encoded, or job id)
- `POST /listTagsForResource` with `{"resourceARN": …}`

Jobs are held as `GetModelInvocationJob` answers (ISO 8601 times); `tags_error` makes one job's tag call fail
with AccessDenied. It listens on 127.0.0.1 at a free port and stops when the context manager exits.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class FakeBedrock:
    """The fake's state: jobs (GetModelInvocationJob answers), tags per ARN, and the requests it saw."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    tags_error: set[str] = field(default_factory=set)
    page_size: int = 2
    seen: list[str] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def add(self, job: dict[str, Any], tags: dict[str, str] | None = None) -> None:
        self.jobs.append(job)
        if tags:
            self.tags[job["jobArn"]] = dict(tags)

    def _find(self, ident: str) -> dict[str, Any] | None:
        return next((j for j in self.jobs if ident in (j["jobArn"], j["jobArn"].rsplit("/", 1)[-1])), None)

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, dict, str]:
        """(status, JSON body, error type) for one request."""
        if method == "GET" and path == "/model-invocation-jobs":
            after = query.get("submitTimeAfter", [None])[0]
            before = query.get("submitTimeBefore", [None])[0]
            jobs = [
                j
                for j in self.jobs
                if (after is None or _ts(j["submitTime"]) > _ts(after))
                and (before is None or _ts(j["submitTime"]) < _ts(before))
            ]
            start = int(query.get("nextToken", ["0"])[0])
            size = min(int(query.get("maxResults", ["1000"])[0]), self.page_size)
            out: dict[str, Any] = {"invocationJobSummaries": jobs[start : start + size]}
            if start + size < len(jobs):
                out["nextToken"] = str(start + size)
            return 200, out, ""
        if method == "GET" and path.startswith("/model-invocation-job/"):
            job = self._find(unquote(path.removeprefix("/model-invocation-job/")))
            if job is None:
                return 404, {"message": "no such job"}, "ResourceNotFoundException"
            return 200, job, ""
        if method == "POST" and path == "/listTagsForResource":
            arn = json.loads(body or b"{}").get("resourceARN", "")
            if arn in self.tags_error:
                return 403, {"message": f"not allowed to read tags of {arn}"}, "AccessDeniedException"
            if self._find(arn) is None:
                return 404, {"message": "no such resource"}, "ResourceNotFoundException"
            tags = [{"key": k, "value": v} for k, v in sorted(self.tags.get(arn, {}).items())]
            return 200, {"tags": tags}, ""
        return 404, {"message": f"the fake does not implement {method} {path}"}, "UnknownOperationException"

    def __enter__(self) -> FakeBedrock:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.seen.append(f"{self.command} {parts.path}")
                status, payload, error = fake.answer(self.command, parts.path, parse_qs(parts.query), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
