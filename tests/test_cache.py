"""The optional key cache: zero queries when warm, and never weaker than the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys.keys import KeyKind, digest, generate_key
from phoenix_apikeys.models import UserKey

from .factories import SystemKeyFactory, UserKeyFactory

pytestmark = pytest.mark.django_db


def call(client: APIClient, credential: str) -> int:
    return client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {credential}").status_code


@pytest.mark.parametrize("factory", [UserKeyFactory, SystemKeyFactory])
def test_warm_authentication_costs_zero_queries(
    api_client: APIClient, key_cache: str, factory: type
) -> None:
    key = factory()
    assert call(api_client, key.plaintext) == 200
    with CaptureQueriesContext(connection) as queries:
        assert call(api_client, key.plaintext) == 200
    assert len(queries) == 0


def test_revocation_takes_effect_on_the_next_request(api_client: APIClient, key_cache: str) -> None:
    key = UserKeyFactory()
    call(api_client, key.plaintext)
    key.delete()
    assert call(api_client, key.plaintext) == 401


def test_expiry_takes_effect_on_the_next_request(api_client: APIClient, key_cache: str) -> None:
    key = UserKeyFactory(expires_at=timezone.now() + timedelta(hours=1))
    call(api_client, key.plaintext)
    entry = caches[key_cache].get(f"phoenix_apikeys:{key.digest}")
    entry.expires_at = timezone.now() - timedelta(seconds=1)  # as if an hour had passed
    caches[key_cache].set(f"phoenix_apikeys:{key.digest}", entry)
    assert call(api_client, key.plaintext) == 401


def test_owner_deactivation_takes_effect_on_the_next_request(
    api_client: APIClient, key_cache: str
) -> None:
    key = UserKeyFactory()
    call(api_client, key.plaintext)
    key.user.is_active = False
    key.user.save()
    assert call(api_client, key.plaintext) == 401


def test_unknown_keys_are_never_cached(
    api_client: APIClient, key_cache: str, settings: object
) -> None:
    attempts = [generate_key(KeyKind.USER) for _ in range(20)]
    for attempt in attempts:
        call(api_client, attempt)
    cache = caches[key_cache]
    secret = settings.PHOENIX_SECRET  # type: ignore[attr-defined]
    assert all(cache.get(f"phoenix_apikeys:{digest(a, secret)}") is None for a in attempts)
    with CaptureQueriesContext(connection) as queries:
        call(api_client, attempts[0])
    assert len(queries) == 1


def test_cached_key_still_records_use_after_the_interval(
    api_client: APIClient, key_cache: str
) -> None:
    key = UserKeyFactory()
    call(api_client, key.plaintext)
    stale = timezone.now() - timedelta(minutes=10)
    UserKey.objects.filter(pk=key.pk).update(last_used_at=stale)
    entry = caches[key_cache].get(f"phoenix_apikeys:{key.digest}")
    entry.last_used_at = stale
    caches[key_cache].set(f"phoenix_apikeys:{key.digest}", entry)
    call(api_client, key.plaintext)
    assert UserKey.objects.get(pk=key.pk).last_used_at > stale
