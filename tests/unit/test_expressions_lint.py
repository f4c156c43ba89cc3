"""What esb lint says of a JMESPath expression: parse errors, and the '!a.b' precedence trap."""

from __future__ import annotations

import pytest

from esb.expressions import validate_expression


@pytest.mark.parametrize("text", ["!item.reservationItem", "items[?!b.c]", "a || !b.c"])
def test_a_negated_field_chain_is_refused_with_the_fix(text: str) -> None:
    """'!a.b' negates a (then .b of a boolean is always null): lint refuses it and says to write !(a.b)."""
    problem = validate_expression(text)
    assert problem is not None
    assert "!(a.b)" in problem


@pytest.mark.parametrize("text", ["!(item.reservationItem)", "!a", "!a[0]", "items[?!(b.c)]", "body.x"])
def test_negations_that_mean_what_they_say_pass(text: str) -> None:
    """A negated name, a negated index or a parenthesised chain is valid as written."""
    assert validate_expression(text) is None


def test_a_parse_error_is_the_parsers_message() -> None:
    """A broken expression gives the parser's message on one line."""
    problem = validate_expression("body.[")
    assert problem is not None
    assert "\n" not in problem
