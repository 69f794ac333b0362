"""PHOENIX_SECRET_FALLBACKS: rotate the server secret without invalidating keys."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from phoenix_apikeys.keys import digest
from phoenix_apikeys.models import UserKey
from phoenix_apikeys.signals import key_rekeyed

from .factories import UserKeyFactory

pytestmark = pytest.mark.django_db

OLD = "tests-only-phoenix-secret-0123456789abcdef"
NEW = "tests-only-rotated-secret-fedcba9876543210"


def call(client: APIClient, key: Any) -> int:
    return client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}").status_code


def test_key_made_with_the_old_secret_works_through_a_fallback(
    api_client: APIClient, settings: Any
) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET, settings.PHOENIX_SECRET_FALLBACKS = NEW, [OLD]
    assert call(api_client, key) == 200


def test_fallback_lookup_is_still_one_query_to_find_the_key(
    api_client: APIClient, settings: Any
) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET, settings.PHOENIX_SECRET_FALLBACKS = NEW, [OLD]
    with CaptureQueriesContext(connection) as queries:
        call(api_client, key)
    selects = [q for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(selects) == 1


def test_use_rekeys_the_digest_to_the_current_secret(api_client: APIClient, settings: Any) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET, settings.PHOENIX_SECRET_FALLBACKS = NEW, [OLD]
    rotated: list[Any] = []
    key_rekeyed.connect(lambda **kw: rotated.append(kw["key"].pk), weak=False, dispatch_uid="t")
    try:
        call(api_client, key)
    finally:
        key_rekeyed.disconnect(dispatch_uid="t")
    assert UserKey.objects.get(pk=key.pk).digest == digest(key.plaintext, NEW)
    assert rotated == [key.pk]


def test_rekeyed_key_works_after_the_fallback_is_removed(
    api_client: APIClient, settings: Any
) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET, settings.PHOENIX_SECRET_FALLBACKS = NEW, [OLD]
    call(api_client, key)
    settings.PHOENIX_SECRET_FALLBACKS = []
    assert call(api_client, key) == 200


def test_unused_key_stops_when_its_secret_is_no_longer_a_fallback(
    api_client: APIClient, settings: Any
) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET, settings.PHOENIX_SECRET_FALLBACKS = NEW, []
    assert call(api_client, key) == 401


def test_fallbacks_are_read_from_the_environment(
    api_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = UserKeyFactory()
    del settings.PHOENIX_SECRET_FALLBACKS
    monkeypatch.setenv("PHOENIX_SECRET_FALLBACKS", f"{OLD},another-old-secret-0123456789abcdefg")
    settings.PHOENIX_SECRET = NEW
    assert call(api_client, key) == 200
