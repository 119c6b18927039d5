"""Asset checks the demo's sample is built to fail, and what each failure shows.

The demo announces these as expected, one line each, instead of alarming a new user; any other check that fails
is reported as a real problem. Add an entry when a sample fault is added for a new check (key `asset:check`).
"""

EXPECTED_CHECK_FAILURES: dict[str, str] = {
    "invocations:rejects_within_threshold": "malformed lines, a truncated gzip and an unknown schema version were "
    "injected; they are in rejected_records with a reason",
    "priced_invocations:unpriced_share": "the sample calls a model with no public price (acme.mystery-model); it "
    "stays unpriced, never $0",
    "billing_line_items:bill_rows_mapped": "the bill names models the billing-name map does not know yet (a new "
    "launch, an imported model); the rows are kept, flagged as unmapped",
    "bill_coverage:unallocated_within_limit": "the sample bill carries spend built to have no owner anywhere (an "
    "untagged evaluation job, Marketplace prompt-cache storage, a model billed but never logged), so part of the "
    "bill stays unallocated with its reason",
    "cost_reconciliation:within_tolerance": "the bill was given injected discrepancies (a price change, missing and "
    "extra usage; billing/cur2/injected_discrepancies.json lists them)",
    "budget_status:within_budget": "the budgets are sized so that one cost center (support) is over budget and one "
    "(sales) near it",
    "priced_invocations:unattributed_share": "some sample callers carry no cost-center tag, to show the "
    "tag-governance view",
    "budget_status:forecast_within_budget": "the budgets are sized from the sample's few days of spend, so a "
    "month-end forecast runs over them",
    "logging_configuration:logging_on_in_every_region": "one sample region has invocation logging off in every "
    "account; its calls show only in the AWS/Bedrock metrics",
    "logging_configuration:logging_unchanged_since_previous_day": "the sample's logging configuration changes "
    "during the sample (text data delivery is turned off in one account and region on its last day)",
    "log_completeness:logs_cover_metrics": "the sample leaves hours unlogged, a region with logging off and late "
    "deliveries, so the logs cover less than the metrics count",
    "cost_anomalies:anomalies_below_severity": "with --history-days the sample plants a spend spike (finance), a new "
    "spender (legal) and a stop (data) on its last day, for foresight to find",
    "billing_line_items:catalog_matches_bill": "the sample bill charges one model 1.2x its catalog rate (the "
    "planted price change) and lists Nova 2 Omni, which the catalog has no row for; both rates are listed",
    "billing_line_items:principal_coverage": "most of the sample's cost is Marketplace and Provisioned Throughput "
    "rows, which carry no IAM principal in the sample bill, so the share of cost that names its caller is low",
}
