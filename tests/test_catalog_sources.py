"""Every bundled price says where it was published, in the agreed form (pipeline/pricing/README.md, `source`).

A price nobody can trace cannot be checked when AWS changes it. The bundled catalog's `source` must be an
`aws-price-list:<ServiceCode>@<YYYY-MM-DD>` offer, a public `https://` URL (either with one ` (note)`),
`derived:<rule>; from <one of those>`, or `unpublished:<note>`. Synced rows are held to the same form on load; a
user's override file stays free text. Reads one small CSV: well under a second.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.pricing import PriceCatalogError, load_catalog
from pipeline.pricing.catalog import BUNDLED_PRICES, source_problem

HEADER = (
    "model_id,region,routing,tier,effective_from,effective_to,input_per_1k_usd,output_per_1k_usd,"
    "cache_read_per_1k_usd,cache_write_per_1k_usd,source\n"
)


def test_every_bundled_source_is_in_the_agreed_form() -> None:
    with BUNDLED_PRICES.open(newline="", encoding="utf-8-sig") as fh:
        bad = [
            f"line {line}: {row['model_id']} {row['region']} {row['effective_from']}: {problem}"
            for line, row in enumerate(csv.DictReader(fh), start=2)
            if (problem := source_problem(row["source"] or ""))
        ]
    assert not bad, f"{BUNDLED_PRICES.name}: sources out of form:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "source",
    [
        "aws-price-list:AmazonBedrock@2026-11-20",
        "aws-price-list:AmazonBedrockFoundationModels@2026-11-20 (Marketplace offer)",
        "https://aws.amazon.com/bedrock/pricing/",
        "https://github.com/o/r/blob/abc/prices.json (value of 2026-07-24; cache_read = 0.25x input (Nova rule))",
        "derived:long context = 2x input; from https://example.com/prices (the standard row)",
        "derived: batch = 0.5x standard; from aws-price-list:AmazonBedrock@2026-11-20",
        "unpublished:launch price quoted by a tutorial whose address was not recorded",
    ],
)
def test_the_forms_the_grammar_accepts(source: str) -> None:
    assert source_problem(source) is None


@pytest.mark.parametrize(
    "source",
    [
        "",
        "derived",
        "litellm model_prices_and_context_window.json @2026-07-24",
        "http://example.com/prices",  # not https
        "https://example.com/prices and more words",  # a note goes in one pair of parentheses
        "https://example.com/prices (a) (b)",
        "aws-price-list:AmazonBedrock@unknown",
        "derived:2x input",  # from where?
        "derived:2x input; from litellm",
        "unpublished:",
    ],
)
def test_the_forms_the_grammar_refuses(source: str) -> None:
    assert source_problem(source) is not None


def test_a_synced_row_out_of_form_is_refused_with_its_line_and_value(tmp_path: Path) -> None:
    synced = tmp_path / "prices.csv"
    synced.write_text(HEADER + "zai.glm-9,us-east-1,in_region,standard,2026-01-01,,0.001,0.002,,,AWS page\n")
    with pytest.raises(PriceCatalogError, match=r"prices\.csv: line 2: source 'AWS page' is not aws-price-list:"):
        load_catalog(synced_path=synced)


def test_an_override_file_keeps_free_text_sources(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(HEADER + "zai.glm-9,us-east-1,,standard,,,0.001,0.002,,,our negotiated rate (email)\n")
    catalog = load_catalog(overrides)
    assert "our negotiated rate (email)" in catalog.rows.get_column("source").to_list()
