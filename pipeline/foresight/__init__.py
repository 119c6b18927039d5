"""Foresight: what is unusual today (`anomalies`), where the month ends (`forecast`), and what the same calls
would cost bought another way (`savings`). Plain functions on polars frames; no Dagster here."""
