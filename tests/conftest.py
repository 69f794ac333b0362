from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from rest_framework.test import APIClient

from phoenix_apikeys import cache as key_cache_module
from phoenix_apikeys import coherence, restrictions, throttle
from phoenix_apikeys.conf import DEFAULTS, phoenix_settings

from .testapp.caches import FlakyCache


@pytest.fixture(autouse=True)
def _no_throttle_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests fail many authentications from one address on purpose; the throttle has its own
    tests, which set FAILED_AUTH_LIMIT themselves."""
    monkeypatch.setitem(DEFAULTS, "FAILED_AUTH_LIMIT", 1_000_000)


@pytest.fixture(autouse=True)
def _fresh_settings_and_caches() -> Iterator[None]:
    phoenix_settings.reload()
    for alias in settings.CACHES:
        if alias != "down":  # down by design
            caches[alias].clear()
    memory = coherence._memory
    if memory is not None:  # a test's keys and users are rolled back after it
        memory.clear()
    if memory is not None and memory.serving():
        # The flush took this process's lease too; its listener would empty memory again at its
        # next heartbeat, in the middle of the test. Nothing was missed: memory was just emptied.
        client = coherence._client(memory.url)
        client.eval(coherence.RENEW, 1, coherence.PROCESSES, memory.id, coherence.LEASE)
    throttle.forget()  # each process's tallies of failed attempts, as the cache is cleared
    restrictions.forget()  # and its counts of rate-limited requests
    yield
    phoenix_settings.reload()


@pytest.fixture(autouse=True)
def _admin_secret_use_not_yet_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: its first admin secret use is recorded."""
    from phoenix_apikeys import verification

    monkeypatch.setattr(verification, "_admin_secret_recorded", None)


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
    """The shared key cache; with Redis, this process's memory too, serving once its channel is
    up (before that a miss reads the shared cache, after it the database)."""
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys"}  # type: ignore[attr-defined]
    memory = coherence.memory(key_cache_module._memory_url("apikeys"))
    deadline = time.monotonic() + 5
    while memory is not None and not memory.serving() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "apikeys"


@pytest.fixture
def flaky(settings: Any) -> Iterator[type[FlakyCache]]:
    """The key cache is a cache whose calls fail while ``FlakyCache.broken`` is set."""
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "flaky", "CACHE_RETRY_INTERVAL": 0}
    key_cache_module._breakers.clear()
    FlakyCache.broken, FlakyCache.calls = False, 0
    yield FlakyCache
    FlakyCache.broken = False
    key_cache_module._breakers.clear()
