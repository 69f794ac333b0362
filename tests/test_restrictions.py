"""Key restrictions: allowed networks, rate limits, remaining uses, disable/enable, last used from.

Through the REST API and the middleware, as a client meets them; the manager where only it can
change a key.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from rest_framework.test import APIClient

from phoenix_apikeys import restrictions
from phoenix_apikeys.models import KeyEvent, SystemKey, UserKey
from phoenix_apikeys.verification import CredentialRejected, averify_credential, verify_credential

from .factories import SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory

pytestmark = pytest.mark.django_db

Call = Callable[..., Any]


@pytest.fixture
def call(api_client: APIClient) -> Call:
    """``call(key, address=..., method=..., path=...)`` -> the response, through the middleware."""

    def send(key: Any, address: str = "203.0.113.7", path: str = "/whoami/", **extra: Any) -> Any:
        return api_client.get(
            path, HTTP_AUTHORIZATION=f"Bearer {key.plaintext}", REMOTE_ADDR=address, **extra
        )

    return send


# Creation and the key object ------------------------------------------------------------------


def test_a_key_is_created_with_restrictions_and_shows_them(api_client: APIClient) -> None:
    user = UserFactory()
    api_client.force_authenticate(user)
    body = {
        "name": "ci",
        "allowed_networks": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1", "10.0.0.0/8"],
        "rate_limit": {"requests": 100, "per": 60},
        "remaining_uses": 5,
    }
    response = api_client.post("/v1/user/api_keys", {"data": body}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["allowed_networks"] == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"]
    assert data["rate_limit"] == {"requests": 100, "per": 60}
    assert data["remaining_uses"] == 5
    assert data["disabled"] is False
    assert data["last_used_from"] == []
    listed = api_client.get("/v1/user/api_keys").json()["data"][0]
    assert {k: listed[k] for k in ("allowed_networks", "rate_limit", "remaining_uses")} == {
        k: data[k] for k in ("allowed_networks", "rate_limit", "remaining_uses")
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("allowed_networks", ["10.0.0.1/8"], "has host bits set; did you mean 10.0.0.0/8?"),
        ("allowed_networks", ["10.0.0.0/33"], "is not an IPv4 or IPv6 network"),
        ("allowed_networks", ["example.com"], "is not an IPv4 or IPv6 network"),
        ("allowed_networks", "10.0.0.0/8", "Expected a list"),
        ("rate_limit", {"requests": 10}, "per: This field is required."),
        ("rate_limit", {"requests": 0, "per": 60}, "greater than or equal to 1"),
        ("rate_limit", {"requests": 10, "per": 86401}, "less than or equal to 86400"),
        ("rate_limit", {"requests": "10", "per": 60}, "A valid integer is required."),
        ("remaining_uses", 0, "greater than or equal to 1"),
        ("remaining_uses", True, "A valid integer is required."),
        ("remaining_uses", 2**63, "less than or equal to"),
    ],
)
def test_bad_restrictions_are_422_naming_the_field(
    api_client: APIClient, field: str, value: Any, message: str
) -> None:
    api_client.force_authenticate(UserFactory())
    body = {"data": {"name": "ci", field: value}}
    response = api_client.post("/v1/user/api_keys", body, format="json")
    assert response.status_code == 422
    assert f"data.{field}" in response.json()["detail"]
    assert message in response.json()["detail"]
    assert not UserKey.objects.exists()


def test_the_manager_refuses_bad_restrictions_by_field() -> None:
    with pytest.raises(ValidationError) as error:
        UserKey.objects.create_key(
            name="k", user=UserFactory(), allowed_networks=["nope"], remaining_uses=-1
        )
    assert set(error.value.message_dict) == {"allowed_networks", "remaining_uses"}
    with pytest.raises(ValidationError) as error:
        UserKey.objects.create_key(name="k", user=UserFactory(), rate_limit={"requests": 1})
    assert set(error.value.message_dict) == {"rate_limit"}


# Allowed networks -----------------------------------------------------------------------------


def test_a_key_works_only_from_its_networks(call: Call) -> None:
    key = UserKeyFactory(allowed_networks=["10.0.0.0/8", "2001:db8::/32"])
    assert call(key, "10.20.30.40").status_code == 200
    assert call(key, "2001:db8::1").status_code == 200
    assert call(key, "::ffff:10.1.1.1").status_code == 200  # IPv4 mapped into IPv6
    refused = call(key, "192.0.2.1")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This API key may not be used from this address."}
    assert call(key, "2001:db9::1").status_code == 403
    assert call(key, "").status_code == 403  # no address: refused, never let through


def test_a_refusal_for_the_address_counts_no_failure(call: Call, settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 2}
    key = UserKeyFactory(allowed_networks=["10.0.0.0/8"])
    for _ in range(5):
        assert call(key, "192.0.2.1").status_code == 403
    assert call(UserKeyFactory(), "192.0.2.1").status_code == 200  # not throttled


def test_behind_a_proxy_the_appended_address_is_judged_not_the_spoofed_one(
    call: Call, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {
        "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": 1,
    }
    key = UserKeyFactory(allowed_networks=["10.0.0.0/8"])
    # The client wrote 10.0.0.1; the proxy appended the address it saw.
    spoofed = call(key, "172.16.0.1", HTTP_X_FORWARDED_FOR="10.0.0.1, 198.51.100.9")
    assert spoofed.status_code == 403
    assert call(key, "172.16.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9, 10.0.0.1").status_code == 200


class _AppendingProxy(http.server.BaseHTTPRequestHandler):
    """A reverse proxy as nginx's ``proxy_add_x_forwarded_for`` is: it appends the address it
    sees to whatever X-Forwarded-For the client sent."""

    upstream = ""

    def do_GET(self) -> None:
        forwarded = self.headers.get("X-Forwarded-For")
        seen = self.client_address[0]
        headers = {
            "Authorization": self.headers.get("Authorization", ""),
            "X-Forwarded-For": f"{forwarded}, {seen}" if forwarded else seen,
        }
        request = urllib.request.Request(self.upstream + self.path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(live_server: Any) -> Iterator[str]:
    _AppendingProxy.upstream = live_server.url
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AppendingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_through_a_real_appending_proxy_a_spoofed_header_does_not_pass(
    proxy: str, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {
        "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": 1,
    }
    inside = UserKeyFactory(allowed_networks=["127.0.0.0/8"])
    elsewhere = UserKeyFactory(allowed_networks=["10.0.0.0/8"])

    def status(key: Any, spoof: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {key.plaintext}"}
        if spoof:
            headers["X-Forwarded-For"] = spoof
        try:
            with urllib.request.urlopen(
                urllib.request.Request(proxy + "/whoami/", headers=headers), timeout=10
            ) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    assert status(inside) == 200  # the proxy saw 127.0.0.1
    assert status(elsewhere) == 403
    assert status(elsewhere, spoof="10.9.9.9") == 403
    assert status(elsewhere, spoof="10.9.9.9, 10.9.9.9") == 403


# Rate limits ----------------------------------------------------------------------------------


def test_past_its_rate_limit_a_key_is_429_with_ratelimit_headers(call: Call) -> None:
    key = UserKeyFactory(rate_limit={"requests": 3, "per": 60})
    assert [call(key).status_code for _ in range(3)] == [200, 200, 200]
    refused = call(key)
    assert refused.status_code == 429
    reset = int(refused["RateLimit-Reset"])
    assert 1 <= reset <= 60
    assert refused["Retry-After"] == str(reset)
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Remaining"] == "0"
    assert refused.json()["detail"].startswith("This API key's rate limit is exceeded.")
    assert call(UserKeyFactory()).status_code == 200  # other keys have their own counts


def test_the_drf_class_alone_sends_the_ratelimit_headers(api_client: APIClient) -> None:
    key = UserKeyFactory(rate_limit={"requests": 1, "per": 60})
    # The middleware skips nothing here; the DRF view's own answer must carry them too.
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key.plaintext}"}
    assert api_client.get("/v1/user", **headers).status_code == 200
    refused = api_client.get("/v1/user", **headers)
    assert refused.status_code == 429
    assert refused["RateLimit-Limit"] == "1"


def test_a_key_without_a_limit_touches_no_counter(call: Call, settings: Any) -> None:
    seen: list[str] = []
    original = restrictions._count_request
    restrictions._count_request = lambda *args: seen.append("counted") or original(*args)  # type: ignore[assignment]
    try:
        for _ in range(3):
            assert call(UserKeyFactory()).status_code == 200
    finally:
        restrictions._count_request = original  # type: ignore[assignment]
    assert seen == []


def test_with_the_counter_store_down_each_process_counts_on_its_own(
    call: Call, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"THROTTLE_CACHE_ALIAS": "down", "CACHE_RETRY_INTERVAL": 0}
    key = UserKeyFactory(rate_limit={"requests": 2, "per": 60})
    assert [call(key).status_code for _ in range(3)] == [200, 200, 429]


# Remaining uses -------------------------------------------------------------------------------


def test_each_request_spends_a_use_and_at_zero_the_key_is_401(call: Call) -> None:
    key = UserKeyFactory(remaining_uses=2)
    assert [call(key).status_code for _ in range(2)] == [200, 200]
    refused = call(key)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "This API key has no uses left."}
    key.refresh_from_db()
    assert key.remaining_uses == 0


def test_a_request_refused_for_scope_or_address_spends_no_use(api_client: APIClient) -> None:
    key = UserKeyFactory(remaining_uses=1, scopes=["read"], allowed_networks=["10.0.0.0/8"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key.plaintext}"}
    assert api_client.post("/plain/groups/", REMOTE_ADDR="10.0.0.1", **auth).status_code == 403
    assert api_client.get("/whoami/", REMOTE_ADDR="192.0.2.1", **auth).status_code == 403
    key.refresh_from_db()
    assert key.remaining_uses == 1
    assert api_client.get("/whoami/", REMOTE_ADDR="10.0.0.1", **auth).status_code == 200


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres… (concurrent connections)",
)
@pytest.mark.django_db(transaction=True)
def test_1000_concurrent_requests_on_100_uses_give_exactly_100_successes() -> None:
    key = UserKeyFactory(remaining_uses=100)

    def attempt(_: int) -> bool:
        try:
            verify_credential(key.plaintext, "203.0.113.7")
            return True
        except CredentialRejected:
            return False
        finally:
            connections.close_all()

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(attempt, range(1000)))
    assert results.count(True) == 100
    key.refresh_from_db()
    assert key.remaining_uses == 0


@pytest.mark.django_db(transaction=True)
def test_async_callers_meet_the_same_restrictions() -> None:
    key = UserKeyFactory(remaining_uses=1, allowed_networks=["10.0.0.0/8"])
    with pytest.raises(restrictions.AddressNotAllowed):
        asyncio.run(averify_credential(key.plaintext, "192.0.2.1"))
    assert asyncio.run(averify_credential(key.plaintext, "10.0.0.1"))[1].pk == key.pk
    with pytest.raises(CredentialRejected, match="no uses left"):
        asyncio.run(averify_credential(key.plaintext, "10.0.0.1"))


# Disable and enable ---------------------------------------------------------------------------


def test_a_disabled_key_is_refused_until_enabled(api_client: APIClient, call: Call) -> None:
    owner = UserFactory()
    key = UserKeyFactory(user=owner)
    assert call(key).status_code == 200  # served once: any cache holds it now
    api_client.force_authenticate(owner)
    disabled = api_client.post(f"/v1/user/api_keys/{key.key_id}/disable")
    assert disabled.status_code == 200
    assert disabled.json()["data"]["disabled"] is True
    api_client.force_authenticate(None)
    refused = call(key)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "This API key is disabled."}
    api_client.force_authenticate(owner)
    assert api_client.get("/v1/user/api_keys").json()["data"][0]["disabled"] is True
    assert api_client.post(f"/v1/user/api_keys/{key.key_id}/disable").status_code == 200
    enabled = api_client.post(f"/v1/user/api_keys/{key.key_id}/enable")
    assert enabled.json()["data"]["disabled"] is False
    api_client.force_authenticate(None)
    assert call(key).status_code == 200
    actions = list(KeyEvent.objects.filter(key_id=key.key_id).values_list("action", flat=True))
    assert actions == ["enabled", "disabled", "created"]  # newest first; the repeat is no event


def test_disabling_takes_the_authority_of_deletion(api_client: APIClient) -> None:
    key = UserKeyFactory()
    api_client.force_authenticate(UserFactory())
    assert api_client.post(f"/v1/user/api_keys/{key.key_id}/disable").status_code == 404
    system = SystemKeyFactory()
    assert api_client.post(f"/v1/system/api_keys/{system.key_id}/disable").status_code == 403
    api_client.force_authenticate(SuperuserFactory())
    assert api_client.post(f"/v1/user/api_keys/{key.key_id}/disable").status_code == 200
    assert api_client.post(f"/v1/system/api_keys/{system.key_id}/disable").status_code == 200
    assert api_client.post(f"/v1/system/api_keys/{key.key_id}/enable").status_code == 404
    system.refresh_from_db()
    assert system.disabled


def test_a_disabled_key_is_listed_with_its_status() -> None:
    key = SystemKeyFactory()
    SystemKey.objects.disable(key)
    assert SystemKey.objects.with_status().get(pk=key.pk).status == "disabled"
    assert not SystemKey.objects.usable().filter(pk=key.pk).exists()


def test_the_cache_unreachable_disables_nothing(
    api_client: APIClient, flaky: Any, admin_secret: str
) -> None:
    key = UserKeyFactory()
    flaky.broken = True
    response = api_client.post(
        f"/v1/user/api_keys/{key.key_id}/disable", HTTP_AUTHORIZATION=f"Bearer {admin_secret}"
    )
    assert response.status_code == 503
    key.refresh_from_db()
    assert not key.disabled


# last_used_from -------------------------------------------------------------------------------


def test_the_last_five_distinct_addresses_are_kept_newest_first(call: Call, settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"LAST_USED_INTERVAL": timedelta(0)}
    key = UserKeyFactory()
    for address in ["192.0.2.1", "192.0.2.2", "192.0.2.1", *[f"198.51.100.{n}" for n in range(5)]]:
        assert call(key, address).status_code == 200
    key.refresh_from_db()
    assert [entry["address"] for entry in key.recent_addresses] == [
        "198.51.100.4",
        "198.51.100.3",
        "198.51.100.2",
        "198.51.100.1",
        "198.51.100.0",
    ]


def test_last_used_from_is_written_at_most_once_per_interval(call: Call) -> None:
    key = UserKeyFactory()
    assert call(key, "192.0.2.1").status_code == 200
    assert call(key, "192.0.2.2").status_code == 200  # within LAST_USED_INTERVAL: not written
    key.refresh_from_db()
    assert [entry["address"] for entry in key.recent_addresses] == ["192.0.2.1"]


# Rotation and the manager ---------------------------------------------------------------------


def test_a_replacement_inherits_the_restrictions_and_takes_the_uses_left() -> None:
    old = UserKeyFactory(
        allowed_networks=["10.0.0.0/8"], rate_limit={"requests": 5, "per": 10}, remaining_uses=7
    )
    new, _ = UserKey.objects.rotate(old, grace_period=timedelta(hours=1))
    assert new.network_list == ["10.0.0.0/8"]
    assert new.rate_limit == {"requests": 5, "per": 10}
    assert new.remaining_uses == 7
    old.refresh_from_db()
    assert old.remaining_uses == 0  # uses are moved, never doubled


def test_restrict_changes_a_key_at_once_and_records_it(call: Call) -> None:
    key = UserKeyFactory()
    assert call(key, "192.0.2.1").status_code == 200
    assert UserKey.objects.restrict(key, allowed_networks=["10.0.0.0/8"], remaining_uses=3)
    assert call(key, "192.0.2.1").status_code == 403
    assert KeyEvent.objects.filter(key_id=key.key_id, action="restricted").count() == 1
    assert not UserKey.objects.restrict(key, remaining_uses=3)  # already so: no event
    with pytest.raises(ValidationError):
        UserKey.objects.restrict(key, rate_limit={"requests": 0, "per": 1})
    with pytest.raises(TypeError):
        UserKey.objects.restrict(key, disabled=True)


def test_when_the_counter_store_fails_midway_a_process_carries_on_from_the_count_it_saw(
    call: Call, settings: Any
) -> None:
    from phoenix_apikeys import cache as key_cache_module

    from .testapp.caches import FlakyCache

    settings.PHOENIX_APIKEYS = {"THROTTLE_CACHE_ALIAS": "flaky", "CACHE_RETRY_INTERVAL": 0}
    key_cache_module._breakers.clear()
    FlakyCache.broken = False
    key = UserKeyFactory(rate_limit={"requests": 4, "per": 60})
    try:
        assert [call(key).status_code for _ in range(3)] == [200, 200, 200]
        FlakyCache.broken = True  # slow or gone: this process counts on from 3
        assert [call(key).status_code for _ in range(2)] == [200, 429]
        FlakyCache.broken = False  # back, with a count of 3: 4 are never passed here
        assert call(key).status_code == 429
    finally:
        FlakyCache.broken = False
        key_cache_module._breakers.clear()


def test_last_used_from_times_read_like_every_other_time(call: Call, api_client: APIClient) -> None:
    owner = UserFactory()
    key = UserKeyFactory(user=owner)
    assert call(key, "192.0.2.1").status_code == 200
    api_client.force_authenticate(owner)
    listed = api_client.get("/v1/user/api_keys").json()["data"][0]
    assert listed["last_used_from"][0]["at"] == listed["last_used_at"]
    assert listed["last_used_at"].endswith("Z")


@pytest.mark.parametrize(
    "network", ["fe80::%a b/64", "fe80::1%eth0", "10.0.0.0/8\n1.2.3.4", "\u202e10.0.0.0/8", "1 2"]
)
def test_a_network_that_could_break_the_stored_list_is_refused(network: str) -> None:
    with pytest.raises(ValidationError) as error:
        UserKey.objects.create_key(name="k", user=UserFactory(), allowed_networks=[network])
    assert set(error.value.message_dict) == {"allowed_networks"}


def test_an_ipv4_mapped_network_is_stored_as_the_ipv4_network_it_maps(call: Call) -> None:
    key = UserKeyFactory(allowed_networks=["::ffff:127.0.0.0/104"])
    assert key.network_list == ["127.0.0.0/8"]
    assert call(key, "127.0.0.1").status_code == 200


def test_a_stored_network_that_cannot_be_read_refuses_the_key_never_a_500(call: Call) -> None:
    key = UserKeyFactory(allowed_networks=["10.0.0.0/8"])
    UserKey.objects.filter(pk=key.pk).update(allowed_networks="10.0.0.0/8 fe80::%a b/64")
    assert call(key, "10.0.0.1").status_code == 200
    assert call(key, "192.0.2.1").status_code == 403


def test_behind_a_proxy_an_unreadable_appended_entry_is_no_address(
    call: Call, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {
        "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": 1,
    }
    key = UserKeyFactory(allowed_networks=["127.0.0.0/8"])  # the proxy's own network
    for header in ("unknown", "198.51.100.7, unknown", "198.51.100.7,"):
        assert call(key, "127.0.0.1", HTTP_X_FORWARDED_FOR=header).status_code == 403


def test_a_key_refused_for_its_address_is_logged_once_a_minute_and_costs_no_query_again(
    call: Call, caplog: pytest.LogCaptureFixture, django_assert_num_queries: Any, key_cache: str
) -> None:
    key = UserKeyFactory(allowed_networks=["10.0.0.0/8"])
    assert call(key, "192.0.2.1").status_code == 403
    with django_assert_num_queries(0):
        for _ in range(3):
            assert call(key, "192.0.2.1").status_code == 403
    warnings = [r.getMessage() for r in caplog.records if "outside its allowed" in r.getMessage()]
    assert len(warnings) == 1
    assert key.key_id in warnings[0] and "192.0.2.1" in warnings[0]


def test_a_key_with_no_uses_left_is_listed_so_and_counts_as_no_live_key(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEYS_PER_USER": 1}
    owner = UserFactory()
    key = UserKeyFactory(user=owner, remaining_uses=1)
    verify_credential(key.plaintext, "192.0.2.1")
    assert UserKey.objects.with_status().get(pk=key.pk).status == "used_up"
    UserKeyFactory(user=owner)  # the spent key is not counted against the limit


def test_a_spent_key_given_uses_again_must_fit_the_owners_limit(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEYS_PER_USER": 1}
    owner = UserFactory()
    spent = UserKeyFactory(user=owner, remaining_uses=1)
    verify_credential(spent.plaintext, "192.0.2.1")
    spent.refresh_from_db()
    UserKeyFactory(user=owner)  # takes the place the spent key left
    with pytest.raises(ValidationError):
        UserKey.objects.restrict(spent, remaining_uses=5)
    spent.refresh_from_db()
    assert spent.remaining_uses == 0


def test_a_zone_id_in_a_client_address_never_reaches_the_log_or_the_record(
    call: Call, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PHOENIX_APIKEYS = {
        "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": 1,
    }
    outside = UserKeyFactory(allowed_networks=["10.0.0.0/8"])
    inside = UserKeyFactory(allowed_networks=["2001:db8::/32"])
    hostile = "2001:db8::1%\x1b[31m<img src=x>"
    assert call(outside, "127.0.0.1", HTTP_X_FORWARDED_FOR=hostile).status_code == 403
    assert call(inside, "127.0.0.1", HTTP_X_FORWARDED_FOR=hostile).status_code == 200
    inside.refresh_from_db()
    assert [entry["address"] for entry in inside.recent_addresses] == ["2001:db8::1"]
    assert not any("\x1b" in record.getMessage() for record in caplog.records)
