"""Outputs for the tools people already use: the FOCUS export of the chargeback and the Glue Data Catalog."""

from pipeline.exports.focus import focus_chargeback, focus_problems
from pipeline.exports.glue import CatalogError, glue_table_input, hive_type, register_tables

__all__ = [
    "CatalogError",
    "focus_chargeback",
    "focus_problems",
    "glue_table_input",
    "hive_type",
    "register_tables",
]
