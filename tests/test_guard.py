"""The runtime guard: checks do not run under WSGI/ASGI, so a broken secret is refused live."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.checks import run_checks
from rest_framework.test import APIClient

from phoenix_apikeys import verification
from phoenix_apikeys.conf import phoenix_settings
from phoenix_apikeys.verification import CredentialRejected, verify_credential

from .factories import UserKeyFactory
from .test_checks import (
    CUSTOM_PREFIXED,
    LOW_VARIETY,
    NON_ASCII_DIGIT_ONLY,
    NON_ASCII_LOWERCASE_ONLY,
    SYSTEM_PREFIXED,
    USER_PREFIXED,
    WITH_WHITESPACE,
)

pytestmark = pytest.mark.django_db

GOOD = "tests-only-admin-secret-9876543210zyxwvu"


def call(client: APIClient, credential: str) -> int:
    return client.get("/admin-only/", HTTP_AUTHORIZATION=f"Bearer {credential}").status_code


@pytest.mark.parametrize(
    "broken",
    [
        "short-admin-secret-1",  # shorter than 32
        "no-digits-here-at-all-just-letters-and-dashes",
        "NO-LOWERCASE-LETTERS-1234567890-ABCDEFGHIJ",
    ],
)
def test_admin_secret_breaking_a_rule_is_never_accepted(
    api_client: APIClient, settings: Any, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    settings.PHOENIX_ADMIN_SECRET = broken
    with caplog.at_level(logging.ERROR, logger="phoenix_apikeys"):
        assert call(api_client, broken) == 401
    assert any("PHOENIX_ADMIN_SECRET is refused" in r.getMessage() for r in caplog.records)


def test_admin_secret_equal_to_phoenix_secret_is_never_accepted(
    api_client: APIClient, settings: Any
) -> None:
    settings.PHOENIX_ADMIN_SECRET = settings.PHOENIX_SECRET
    assert call(api_client, settings.PHOENIX_SECRET) == 401


def test_admin_secret_without_phoenix_secret_is_never_accepted(
    api_client: APIClient, settings: Any
) -> None:
    settings.PHOENIX_SECRET = None
    settings.PHOENIX_ADMIN_SECRET = GOOD
    assert call(api_client, GOOD) == 401


def test_valid_admin_secret_is_accepted(api_client: APIClient, settings: Any) -> None:
    settings.PHOENIX_ADMIN_SECRET = GOOD
    assert call(api_client, GOOD) == 200


def test_admin_secret_is_read_from_the_environment(
    api_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    del settings.PHOENIX_ADMIN_SECRET
    monkeypatch.setenv("PHOENIX_ADMIN_SECRET", GOOD)
    settings.PHOENIX_APIKEYS = {}  # any setting change reloads
    assert call(api_client, GOOD) == 200


def test_weak_phoenix_secret_refuses_every_key(
    api_client: APIClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET = "weak"
    with caplog.at_level(logging.ERROR, logger="phoenix_apikeys"):
        status = api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert status.status_code == 401
    assert any("PHOENIX_SECRET" in r.getMessage() for r in caplog.records)


def test_prefix_of_the_admin_secret_is_refused(api_client: APIClient, settings: Any) -> None:
    settings.PHOENIX_ADMIN_SECRET = GOOD
    assert call(api_client, GOOD[:-1]) == 401
    assert call(api_client, GOOD + "x") == 401


def assert_refused(admin_secret: str, caplog: pytest.LogCaptureFixture, check_id: str) -> None:
    """Dropped by the guard, so it never authenticates, and the log names the rule, not the value.

    verify_credential is called directly: some of these values cannot even be sent in a header.
    """
    with caplog.at_level(logging.ERROR, logger="phoenix_apikeys"):
        phoenix_settings.reload()
        assert phoenix_settings.secrets.admin_secret is None
    with pytest.raises(CredentialRejected):
        verify_credential(admin_secret)
    refusals = [r.getMessage() for r in caplog.records if "is refused" in r.getMessage()]
    assert any(check_id in message for message in refusals)
    assert not any(admin_secret in message for message in refusals)


def test_admin_secret_whose_only_digit_is_non_ascii_is_refused(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PHOENIX_ADMIN_SECRET = NON_ASCII_DIGIT_ONLY
    assert_refused(NON_ASCII_DIGIT_ONLY, caplog, "phoenix_apikeys.E013")


def test_admin_secret_whose_only_lowercase_letter_is_non_ascii_is_refused(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PHOENIX_ADMIN_SECRET = NON_ASCII_LOWERCASE_ONLY
    assert_refused(NON_ASCII_LOWERCASE_ONLY, caplog, "phoenix_apikeys.E014")


def test_admin_secret_with_whitespace_is_refused(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PHOENIX_ADMIN_SECRET = WITH_WHITESPACE
    assert_refused(WITH_WHITESPACE, caplog, "phoenix_apikeys.E016")


@pytest.mark.parametrize("admin", [SYSTEM_PREFIXED, USER_PREFIXED])
def test_admin_secret_starting_with_a_default_key_prefix_is_refused(
    settings: Any, caplog: pytest.LogCaptureFixture, admin: str
) -> None:
    settings.PHOENIX_ADMIN_SECRET = admin
    assert_refused(admin, caplog, "phoenix_apikeys.E017")


def test_admin_secret_starting_with_a_custom_key_prefix_is_refused(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PHOENIX_APIKEYS = {"USER_KEY_PREFIX": "acme_"}
    settings.PHOENIX_ADMIN_SECRET = CUSTOM_PREFIXED
    assert_refused(CUSTOM_PREFIXED, caplog, "phoenix_apikeys.E017")


def test_admin_secret_equal_to_secret_key_is_refused(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SECRET_KEY = GOOD
    settings.PHOENIX_ADMIN_SECRET = GOOD
    assert_refused(GOOD, caplog, "phoenix_apikeys.E018")


def test_low_variety_admin_secret_is_only_warned_about(
    api_client: APIClient, settings: Any
) -> None:
    """Low variety is a deploy warning (W003), not a rule: the runtime still accepts it."""
    settings.PHOENIX_ADMIN_SECRET = LOW_VARIETY
    assert call(api_client, LOW_VARIETY) == 200


def test_a_secret_starting_with_a_dollar_is_taken_literally(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """django-environ would read "$NAME" as another variable's value; a secret never is."""
    del settings.PHOENIX_ADMIN_SECRET
    value = "$k3ya1B2c3d4e5f6g7h8i9j0klmnopqrstuvwxyz"
    monkeypatch.setenv("PHOENIX_ADMIN_SECRET", value)
    monkeypatch.setenv(
        "k3ya1B2c3d4e5f6g7h8i9j0klmnopqrstuvwxyz", "something-else-entirely-0123456789"
    )
    phoenix_settings.reload()
    assert phoenix_settings.secrets.admin_secret == value
    assert verify_credential(value)[1] is verification.ADMIN_SECRET


def test_an_admin_secret_too_long_to_present_is_refused(settings: Any) -> None:
    settings.PHOENIX_ADMIN_SECRET = "a1" * 513
    phoenix_settings.reload()
    assert phoenix_settings.secrets.admin_secret is None
    assert "phoenix_apikeys.E019" in {m.id for m in run_checks()}


@pytest.mark.parametrize("where", ["PHOENIX_SECRET_FALLBACKS", "SECRET_KEY_FALLBACKS"])
def test_an_admin_secret_equal_to_a_fallback_is_refused(settings: Any, where: str) -> None:
    value = "tests-only-shared-value-0123456789abcdefgh"
    setattr(settings, where, [value])
    settings.PHOENIX_ADMIN_SECRET = value
    phoenix_settings.reload()
    assert phoenix_settings.secrets.admin_secret is None
    expected = "phoenix_apikeys.E015" if where.startswith("PHOENIX") else "phoenix_apikeys.E018"
    assert expected in {m.id for m in run_checks()}
