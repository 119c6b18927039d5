"""Names that look unused to vulture because a framework calls them by name; read by `uv run vulture` only.

vulture counts a name as used when it appears anywhere in `pipeline/` or `tests/`, so each line here marks one
name as used everywhere. Add a name only when something outside our code reads it (say what); dead code is removed,
not listed. Decorated callbacks (typer commands, pydantic validators, pytest fixtures, Dagster definitions) are
ignored through `ignore_decorators` in pyproject.toml instead.
"""

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# Python itself
_.__getattr__  # a module's __getattr__ (PEP 562): pipeline.cli forwards attribute lookups to pipeline.commands

# pydantic
_.model_config  # read by pydantic's model metaclass

# http.server / socketserver (the local fakes and the fault proxy in tests)
_.do_GET
_.do_HEAD
_.do_POST
_.do_PUT
_.do_DELETE
_.log_message
_.protocol_version
_.close_connection
_.daemon_threads
_.allow_reuse_address

# plotly: figure and trace attributes set for plotly to read
_.showlegend
_.hovertemplate

# html.parser (the report tests read the HTML the report writes)
_.handle_starttag
_.handle_endtag
_.handle_data

# pytest
_.pytestmark  # a module's marks
_.pytest_collection_modifyitems  # a conftest hook
_.config_env  # fixtures a test takes for their side effect (the environment they set)
_.dagster_home

# pipeline.sample.delivery.generate_sample reports how many events CloudWatch Logs accepted, for its callers
_.cloudwatch_events
