"""Reviewed id aliases: other spellings of a model id that must price as that model (`data/model_aliases.csv`).

Bedrock accepts several ids for one model: the runtime id (`anthropic.claude-haiku-4-5-20251001-v1:0`), its
system-profile forms (`us.`, `eu.`, `apac.`, `global.`, `us-gov.` + that id; the matcher strips those prefixes
itself), and short ids such as `anthropic.claude-haiku-4-5` on the OpenAI-compatible (mantle) endpoint. Price List
rows are keyed by the runtime id, so a short id reaches them only through this file. Every alias names a public
source; an id that is not listed is never matched to a look-alike (`sonnet-5` is not `sonnet-5-5`).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

ALIASES_FILE = Path(__file__).with_name("data") / "model_aliases.csv"
COLUMNS = ("alias", "model_id", "source")


class AliasFileError(ValueError):
    """The alias file is malformed (names the file, the line and the problem)."""


@lru_cache(maxsize=4)
def load_aliases(path: str | None = None) -> dict[str, str]:
    """alias -> model id, validated: both ids present, a source on every line, no alias listed twice, no chains."""
    p = Path(path) if path else ALIASES_FILE
    out: dict[str, str] = {}
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise AliasFileError(f"{p}: line 1: header must be {','.join(COLUMNS)}")
        for rec in reader:
            line = reader.line_num
            alias, model, source = (rec[c].strip() for c in COLUMNS)
            if not alias or not model or not source:
                raise AliasFileError(f"{p}: line {line}: alias, model_id and source are all required")
            if not source.startswith("https://"):
                raise AliasFileError(f"{p}: line {line}: source must be a public https:// URL")
            if alias in out:
                raise AliasFileError(f"{p}: line {line}: alias {alias!r} is listed twice")
            out[alias] = model
    chained = sorted(a for a, m in out.items() if m in out)
    if chained:
        raise AliasFileError(f"{p}: alias {chained[0]!r} points at another alias; point it at the model id")
    return out
