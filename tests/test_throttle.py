"""Guessing is throttled: failures counted per client address, refused before any query."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys import cache as key_cache_module
from phoenix_apikeys import throttle
from phoenix_apikeys.http import client_address
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import UserKey

from .factories import UserKeyFactory
from .testapp.caches import FlakyCache

pytestmark = pytest.mark.django_db

LIMIT = 5


@pytest.fixture(autouse=True)
def limit(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": LIMIT, "FAILED_AUTH_WINDOW": 60}


def guess(client: APIClient, address: str = "203.0.113.7", path: str = "/whoami/") -> Any:
    credential = generate_key("phxu_")  # well formed, unknown: each costs a query
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {credential}", REMOTE_ADDR=address)


@pytest.mark.parametrize("path", ["/whoami/", "/plain/", "/v1/user"])
def test_past_the_limit_an_address_gets_429_with_retry_after(
    api_client: APIClient, path: str
) -> None:
    statuses = [guess(api_client, path=path).status_code for _ in range(LIMIT)]
    assert statuses == [401] * LIMIT
    response = guess(api_client, path=path)
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Too many failed authentications" in response.json()["detail"]


def test_a_throttled_address_costs_no_database_query(api_client: APIClient) -> None:
    for _ in range(LIMIT):
        guess(api_client)
    with CaptureQueriesContext(connection) as queries:
        assert guess(api_client).status_code == 429
    assert len(queries) == 0


def test_a_valid_key_from_another_address_is_not_slowed(api_client: APIClient) -> None:
    key = UserKeyFactory()
    for _ in range(LIMIT + 3):
        guess(api_client, address="203.0.113.7")
    response = api_client.get(
        "/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}", REMOTE_ADDR="198.51.100.9"
    )
    assert response.status_code == 200


def test_malformed_keys_and_wrong_admin_secrets_count_too(
    api_client: APIClient, admin_secret: str
) -> None:
    for credential in ["phxu_short", "not-the-admin-secret-0123456789abcdef"] * 3:
        api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {credential}")
    assert guess(api_client, address="127.0.0.1").status_code == 429


def test_a_whole_ipv6_64_is_one_address(api_client: APIClient) -> None:
    for host in range(LIMIT):
        guess(api_client, address=f"2001:db8:1:2::{host + 1}")
    assert guess(api_client, address="2001:db8:1:2:ffff::1").status_code == 429
    assert guess(api_client, address="2001:db8:1:3::1").status_code == 401


def test_behind_a_proxy_the_client_is_the_entry_the_proxy_appended(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {
        "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": 1,
    }
    # The client may write anything in front; only the proxy's own entry is trusted.
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.9"}
    assert client_address(meta) == "198.51.100.9"
    assert client_address({"REMOTE_ADDR": "10.0.0.2"}) == "10.0.0.2"


def test_without_the_proxy_setting_forwarded_headers_are_ignored() -> None:
    meta = {"REMOTE_ADDR": "198.51.100.9", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}
    assert client_address(meta) == "198.51.100.9"


def test_a_forged_forwarded_header_cannot_dodge_the_limit(
    api_client: APIClient, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {
        "FAILED_AUTH_LIMIT": LIMIT,
        "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR",
    }
    for attempt in range(LIMIT):
        api_client.get(
            "/whoami/",
            HTTP_AUTHORIZATION=f"Bearer {generate_key('phxu_')}",
            HTTP_X_FORWARDED_FOR=f"10.9.9.{attempt}, 203.0.113.7",
        )
    response = api_client.get(
        "/whoami/",
        HTTP_AUTHORIZATION=f"Bearer {generate_key('phxu_')}",
        HTTP_X_FORWARDED_FOR="10.9.9.99, 203.0.113.7",
    )
    assert response.status_code == 429


def test_with_its_cache_down_each_process_still_counts_on_its_own(
    api_client: APIClient, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": LIMIT, "THROTTLE_CACHE_ALIAS": "down"}
    key_cache_module._breakers.clear()
    key = UserKeyFactory()
    statuses = [guess(api_client).status_code for _ in range(LIMIT + 2)]
    assert statuses == [401] * LIMIT + [429] * 2
    response = api_client.get(
        "/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}", REMOTE_ADDR="198.51.100.9"
    )
    assert response.status_code == 200  # other addresses and authentication are unchanged


@pytest.fixture
def shared(settings: Any) -> type[FlakyCache]:
    """The throttle's shared count in a cache whose calls are counted."""
    settings.PHOENIX_APIKEYS = {
        "FAILED_AUTH_LIMIT": 100,
        "FAILED_AUTH_WINDOW": 60,
        "THROTTLE_CACHE_ALIAS": "flaky",
    }
    FlakyCache.broken, FlakyCache.calls = False, 0
    return FlakyCache


def shared_count(address: str = "203.0.113.7") -> Any:
    return caches["flaky"].get("phoenix_apikeys:failures:" + address)


def malformed(client: APIClient, address: str = "203.0.113.7") -> int:
    return int(
        client.get(
            "/whoami/", HTTP_AUTHORIZATION="Bearer phxu_short", REMOTE_ADDR=address
        ).status_code
    )


def test_repeated_refusals_make_no_round_trip_to_the_shared_count(
    api_client: APIClient, shared: type[FlakyCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "FLUSH_INTERVAL", 60.0)
    assert malformed(api_client) == 401
    assert shared_count() == 1  # an address's first failure here is added at once
    calls = shared.calls
    assert {malformed(api_client) for _ in range(20)} == {401}
    assert shared.calls == calls  # the next ones wait in this process...
    monkeypatch.setattr(throttle, "FLUSH_INTERVAL", 0.0)
    assert malformed(api_client) == 401
    assert shared_count() == 22  # ...and are added together once the interval has passed


def test_past_half_the_limit_every_failure_is_added_at_once(
    api_client: APIClient, shared: type[FlakyCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "FLUSH_INTERVAL", 60.0)
    for _ in range(49):
        malformed(api_client)
    assert shared_count() == 1
    malformed(api_client)
    assert shared_count() == 50  # known: 50, half of 100
    for expected in range(51, 54):
        malformed(api_client)
        assert shared_count() == expected


def test_an_address_another_process_counted_past_the_limit_is_refused_at_its_first_failure(
    api_client: APIClient, shared: type[FlakyCache]
) -> None:
    caches["flaky"].set("phoenix_apikeys:failures:203.0.113.7", 100, 60)
    key = UserKeyFactory()
    assert guess(api_client).status_code == 429  # one query spent, and the count learned
    with CaptureQueriesContext(connection) as queries:
        assert guess(api_client).status_code == 429
        response = api_client.get(
            "/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}", REMOTE_ADDR="203.0.113.7"
        )
        assert response.status_code == 429  # a key not in the key cache needs the database
    assert len(queries) == 0


def test_a_process_tallies_a_bounded_number_of_addresses(
    api_client: APIClient, shared: type[FlakyCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "MAX_TALLIES", 3)
    for host in range(1, 7):
        malformed(api_client, address=f"198.51.100.{host}")
    assert len(throttle._tallies) == 3
    assert shared_count("198.51.100.1") == 1  # what the dropped tallies added stays counted


def test_a_forked_child_starts_with_no_tallies(
    api_client: APIClient, shared: type[FlakyCache]
) -> None:
    malformed(api_client)
    assert throttle._tallies
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        os._exit(0 if not throttle._tallies else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert throttle._tallies  # the parent keeps its own


def test_a_limit_of_none_turns_throttling_off(api_client: APIClient, settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": None}
    assert {guess(api_client).status_code for _ in range(40)} == {401}


@pytest.mark.parametrize(
    ("hop", "address"),
    [
        ("198.51.100.9:40001", "198.51.100.9"),
        ("[2001:db8::1]:40001", "2001:db8::/64"),
        ("unknown", "10.0.0.2"),
        ("", "10.0.0.2"),
    ],
)
def test_a_proxy_hop_with_a_port_or_no_address_still_counts(
    settings: Any, hop: str, address: str
) -> None:
    """A load balancer that appends ip:port, or garbage, never turns the throttle off."""
    settings.PHOENIX_APIKEYS = {"CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR"}
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": f"1.2.3.4, {hop}"}
    assert client_address(meta) == address


def test_a_flood_of_malformed_keys_hides_no_failure_that_names_a_key(
    api_client: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The failure log's budget (10 lines a second a process) is not the attacker's to spend:
    a throttled address is not logged at all, and a failure naming a stored key (expired, its
    owner inactive) is always logged."""
    expired = UserKeyFactory()
    UserKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    with caplog.at_level(logging.WARNING, logger="phoenix_apikeys"):
        statuses = [malformed(api_client, address="203.0.113.7") for _ in range(30)]
        for host in range(1, 21):  # spread out: no address is throttled, the budget is spent
            malformed(api_client, address=f"198.51.100.{host}")
        response = api_client.get(
            "/whoami/", HTTP_AUTHORIZATION=f"Bearer {expired.plaintext}", REMOTE_ADDR="192.0.2.1"
        )
    assert statuses == [401] * LIMIT + [429] * (30 - LIMIT)
    assert response.status_code == 401
    lines = [r.getMessage() for r in caplog.records if "Authentication failed" in r.getMessage()]
    assert len(lines) <= 10 + 1  # the second's budget, and the line naming the key
    assert any(expired.key_id in line and "expired" in line for line in lines)
