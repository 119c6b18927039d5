"""The one money format and the one escaping helper (`pipeline.text`)."""

import pytest

from pipeline.text import escape_for, signed_usd, usd


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.42, "$0.42"),
        (0.0, "$0.00"),
        (0.001, "<$0.01"),
        (99.994, "$99.99"),
        (100, "$100"),
        (1457.4, "$1,457"),
        (-12.345, "-$12.35"),
        (None, "n/a"),
        (float("nan"), "n/a"),
    ],
)
def test_usd_cents_below_100_whole_dollars_above(value: float | None, expected: str) -> None:
    assert usd(value) == expected


def test_signed_usd() -> None:
    assert signed_usd(3) == "+$3.00"
    assert signed_usd(-300) == "-$300"


HOSTILE = '<a href="https://evil.example/x">Click to approve budget</a> & *bold* <!channel>'


@pytest.mark.parametrize("context", ["html", "plotly_label", "dagster_markdown", "slack_mrkdwn"])
def test_no_markup_survives(context: str) -> None:
    out = escape_for(HOSTILE, context)  # type: ignore[arg-type]
    assert "<a" not in out and "<!channel>" not in out and "</a>" not in out


def test_markdown_link_syntax_is_inert() -> None:
    out = escape_for("[approve](https://evil.example)", "dagster_markdown")
    assert "[approve](" not in out


def test_plain_drops_control_characters_and_caps_length() -> None:
    assert escape_for("a\x1b[31mb", "plain") == "a[31mb"
    assert len(escape_for("x" * 1000, "plain")) == 200


def test_unknown_context_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown escape context"):
        escape_for("x", "latex")  # type: ignore[arg-type]


def test_money_rounds_half_up_as_people_expect() -> None:
    """Python's formatting rounds halves to even ($184.50 would read $184); money reads $185."""
    assert [usd(v) for v in (184.5, 0.125, 2.675, 99.995, 99.994)] == ["$185", "$0.13", "$2.68", "$100", "$99.99"]
