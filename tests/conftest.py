from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from phoenix_apikeys.conf import phoenix_settings


@pytest.fixture(autouse=True)
def _fresh_settings_and_caches() -> Iterator[None]:
    phoenix_settings.reload()
    for cache in caches.all():
        cache.clear()
    yield
    phoenix_settings.reload()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def bearer() -> object:
    """``bearer(credential)`` -> the extra headers of a request that presents it."""
    return lambda credential: {"HTTP_AUTHORIZATION": f"Bearer {credential}"}


ADMIN_SECRET = "tests-only-admin-secret-9876543210zyxwvu"


@pytest.fixture
def admin_secret(settings: object) -> str:
    settings.PHOENIX_ADMIN_SECRET = ADMIN_SECRET  # type: ignore[attr-defined]
    return ADMIN_SECRET


@pytest.fixture
def key_cache(settings: object) -> str:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys"}  # type: ignore[attr-defined]
    return "apikeys"
