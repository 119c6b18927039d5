"""`bedrock-ledger` (`python -m pipeline.cli`): the entry point; the commands are in `pipeline.commands`.

Deliberately empty of imports. Python's process pools (`spawn`, `forkserver`) run the main module again in every
worker they start (as `__mp_main__`): the console script's `from pipeline.cli import main`, or this module under
`python -m`. A day's parse starts one worker per core, so whatever this module imported (Typer, pydantic, the
config model) was imported again by each of them, about 0.15 CPU s apiece for nothing. `from pipeline.cli import
run_cli` and the other names of `pipeline.commands` keep working through the module `__getattr__`.
"""

from __future__ import annotations

from typing import Any


def main() -> None:
    """Console-script entry point: `pipeline.commands.main`."""
    from pipeline.commands import main as run

    run()


def __getattr__(name: str) -> Any:
    import pipeline.commands

    return getattr(pipeline.commands, name)


if __name__ == "__main__":
    main()
