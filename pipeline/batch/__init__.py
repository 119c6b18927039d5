"""Batch inference jobs as a daily table: spread over the days they ran, priced at batch rates, owned, reconciled.

`jobs_table.batch_jobs_table` builds `batch_jobs` from what `pipeline.sources.batch_jobs` read; `bill.py` holds the
bill side (the `-batch` usage rows, their allocation to jobs, the per-job reconciliation over [submit, end]).
"""

from pipeline.batch.jobs_table import batch_jobs_table

__all__ = ["batch_jobs_table"]
