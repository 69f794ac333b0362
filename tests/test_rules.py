"""The rules module on its own: ASCII classes, hints, the variety estimate and its inputs."""

from __future__ import annotations

from secrets import token_urlsafe
from typing import Any

import pytest

from phoenix_apikeys.conf import rule_context
from phoenix_apikeys.rules import (
    MIN_VARIETY_BITS,
    RuleContext,
    admin_secret_problems,
    estimated_bits,
    generate_secret,
    secret_problems,
)

from .test_checks import GOOD_SECRET, LOW_VARIETY

NO_CONTEXT = RuleContext(secret_key=None, key_prefixes=())


def test_missing_lowercase_hint_asks_for_a_lowercase_letter() -> None:
    [problem] = secret_problems("NO-LOWERCASE-IN-THIS-SECRET-0123456789")
    assert problem.id == "phoenix_apikeys.E004"
    assert problem.hint.endswith("(re-run until it has a lowercase letter).")


def test_missing_digit_hint_asks_for_a_digit() -> None:
    [problem] = admin_secret_problems(
        "no-digits-in-this-admin-secret-at-all-x", GOOD_SECRET, NO_CONTEXT
    )
    assert problem.id == "phoenix_apikeys.E013"
    assert problem.hint.endswith("(re-run until it has a digit).")


def test_every_admin_rule_has_its_own_id_and_a_hint() -> None:
    value = "phxs_ \u00e9"
    context = RuleContext(secret_key=value, key_prefixes=("phxs_", "phxu_"))
    problems = admin_secret_problems(value, value, context)
    assert len({problem.id for problem in problems}) == len(problems) == 6
    assert all(problem.hint for problem in problems)


@pytest.mark.parametrize(("value", "bits"), [("aaaa", 0.0), ("abab", 4.0), ("abcd", 8.0)])
def test_estimated_bits_is_length_times_shannon_entropy(value: str, bits: float) -> None:
    assert estimated_bits(value) == pytest.approx(bits)


def test_one_repeated_letter_and_a_digit_is_low_variety() -> None:
    assert estimated_bits(LOW_VARIETY) < MIN_VARIETY_BITS


def test_generated_secret_is_not_low_variety() -> None:
    assert estimated_bits(token_urlsafe(48)) >= MIN_VARIETY_BITS


def test_context_has_no_secret_key_when_it_is_empty(settings: Any) -> None:
    """Django raises on reading an empty SECRET_KEY; the rules must not crash on it."""
    settings.SECRET_KEY = ""
    assert rule_context().secret_key is None


def test_context_takes_both_prefixes_from_the_settings(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"SYSTEM_KEY_PREFIX": "acmes_"}
    assert rule_context().key_prefixes == ("acmes_", "phxu_")


def test_generated_secrets_break_no_rule() -> None:
    values = {generate_secret() for _ in range(200)}
    assert len(values) == 200
    for value in values:
        assert secret_problems(value) == []
        assert estimated_bits(value) >= MIN_VARIETY_BITS
