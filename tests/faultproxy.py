"""A fault-injecting HTTP proxy for tests: forwards to moto's server and misbehaves on request.

Point `AWS_ENDPOINT_URL` at `FaultProxy.url` and every boto3/s3fs client goes through it. By default each
request is forwarded unchanged; `fail()` arms a fault for the next N requests whose signature matches a
pattern. The signature is `"<METHOD> <path?query> <X-Amz-Target>"`, e.g.
`GET /logs-bucket/AWSLogs/…/x.json.gz ` or `POST / Logs_20140328.FilterLogEvents`, so a test can aim at one
S3 operation or one CloudWatch API. Faults are what real AWS endpoints do under load or on a bad network:

- `slowdown`: S3's 503 `SlowDown` (XML body), the throttling answer of S3;
- `internal`: S3's 500 `InternalError` (XML body);
- `throttle`: a JSON-protocol 400 `ThrottlingException` (CloudWatch Logs' "Rate exceeded");
- `unavailable`: a JSON-protocol 503 `ServiceUnavailableException`;
- `forbidden`: S3's 403 `AccessDenied`, what a least-privilege policy answers (a HEAD of a key that does not
  exist is a 403, not a 404, without an unconditional `s3:ListBucket`);
- `missing_as_403`: the request is forwarded, and a 404 answer becomes 403 `AccessDenied`, as S3 answers a
  caller whose `s3:ListBucket` is limited by a prefix condition (a least-privilege policy);
- `drop`: the request is forwarded, the status line, the headers (with the full Content-Length) and only the
  first `after_bytes` bytes of the body are sent, then the connection is closed mid-body.

The server listens on 127.0.0.1 at a free port chosen by the OS, serves each connection on a daemon thread and
stops when the context manager (or the test fixture using it) exits, so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
KINDS = ("slowdown", "internal", "throttle", "unavailable", "forbidden", "missing_as_403", "drop")
FORWARDED = ("drop", "missing_as_403")


@dataclass
class Fault:
    """One armed fault: what to do to the next `remaining` requests matching `pattern`."""

    pattern: re.Pattern[str]
    kind: str
    remaining: int
    after_bytes: int = 0
    fired: int = 0


@dataclass(frozen=True)
class Seen:
    """One request the proxy handled: its signature, the status sent, and the fault applied (if any)."""

    signature: str
    status: int
    fault: str | None


@dataclass
class _State:
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _s3_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
    ).encode()
    return status, {"Content-Type": "application/xml", "x-amz-request-id": "FAULT"}, body


def _json_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "FAULT"}, body


def canned_error(kind: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an injected error response, as the real service sends it."""
    if kind == "slowdown":
        return _s3_error(503, "SlowDown", "Please reduce your request rate.")
    if kind == "internal":
        return _s3_error(500, "InternalError", "We encountered an internal error. Please try again.")
    if kind == "forbidden":
        return _s3_error(403, "AccessDenied", "Access Denied")
    if kind == "throttle":
        return _json_error(400, "ThrottlingException", "Rate exceeded")
    if kind == "unavailable":
        return _json_error(503, "ServiceUnavailableException", "The service is unavailable.")
    raise ValueError(f"not an error kind: {kind}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like the real endpoints; `Expect: 100-continue` is answered
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silent: pytest shows the proxy's `seen` list when a test needs it."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _take_fault(self, signature: str) -> Fault | None:
        state = self.server.state
        with state.lock:
            for fault in state.faults:
                if fault.remaining > 0 and fault.pattern.search(signature):
                    fault.remaining -= 1
                    fault.fired += 1
                    return fault
        return None

    def _record(self, signature: str, status: int, fault: Fault | None) -> None:
        with self.server.state.lock:
            self.server.state.seen.append(Seen(signature, status, fault.kind if fault else None))

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
        }
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, resp.reason, resp.getheaders(), payload
        finally:
            conn.close()

    def _handle(self) -> None:
        body = self._read_body()
        signature = f"{self.command} {self.path} {self.headers.get('X-Amz-Target', '')}"
        fault = self._take_fault(signature)
        if fault is not None and fault.kind not in FORWARDED:
            status, headers, payload = canned_error(fault.kind)
            self._record(signature, status, fault)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        status, reason, upstream_headers, payload = self._forward(body)
        if fault is not None and fault.kind == "missing_as_403":
            if status == 404:
                status, headers, payload = canned_error("forbidden")
                reason, upstream_headers = "Forbidden", [*headers.items(), ("Content-Length", str(len(payload)))]
            fault = None
        self._record(signature, status, fault)
        self.send_response(status, reason)
        declared = None
        for k, v in upstream_headers:
            if k.lower() in HOP_BY_HOP or k.lower() in ("content-length", "date", "server"):
                if k.lower() == "content-length":
                    declared = v
                continue
            self.send_header(k, v)
        length = declared if self.command == "HEAD" and declared is not None else str(len(payload))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None:  # drop: part of the body, then the connection goes away
            self.wfile.write(payload[: fault.after_bytes])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 - http.server's naming


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.state = _State()


class FaultProxy:
    """The proxy: `start()`/`stop()` or a `with` block; `url` is what `AWS_ENDPOINT_URL` should be."""

    def __init__(self, upstream: str) -> None:
        self._server = _Server(upstream)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()

    def fail(self, pattern: str, kind: str, times: int = 1, after_bytes: int = 0) -> Fault:
        """Answer the next `times` requests whose signature matches `pattern` (regex search) with `kind`."""
        if kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {kind!r}")
        fault = Fault(re.compile(pattern), kind, times, after_bytes)
        with self._server.state.lock:
            self._server.state.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault (requests are forwarded unchanged again); the request log is kept."""
        with self._server.state.lock:
            self._server.state.faults.clear()

    @property
    def seen(self) -> list[Seen]:
        """Every request handled so far, in order."""
        with self._server.state.lock:
            return list(self._server.state.seen)

    def count(self, pattern: str, fault: str | None = None) -> int:
        """How many handled requests matched `pattern` (and, if given, had fault `fault` applied)."""
        rx = re.compile(pattern)
        return sum(1 for s in self.seen if rx.search(s.signature) and (fault is None or s.fault == fault))
