"""Development benchmarks: not part of the installed `pipeline` package (run `uv run python -m benchmarks.bench`)."""
