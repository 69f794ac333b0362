"""The runtime guard: checks do not run under WSGI/ASGI, so a broken secret is refused live."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from rest_framework.test import APIClient

from .factories import UserKeyFactory

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
