"""The optional key cache: zero queries when warm, and never weaker than the database."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import update_last_login
from django.core.cache import caches
from django.db import connection, connections, transaction
from django.db.models.signals import pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys import cache as key_cache_module
from phoenix_apikeys import coherence
from phoenix_apikeys.ids import key_id
from phoenix_apikeys.keys import KeyKind, digest, generate_key
from phoenix_apikeys.models import KeyManager, UserKey, system_user
from phoenix_apikeys.rest import views as rest_views
from phoenix_apikeys.signals import key_revoked

from .factories import (
    SuperuserFactory,
    SystemKeyFactory,
    UserFactory,
    UserKeyFactory,
    key_of_inactive_owner,
)
from .testapp.caches import FlakyCache

pytestmark = pytest.mark.django_db


def call(client: APIClient, credential: str) -> int:
    return client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {credential}").status_code


def cached(digest: str) -> Any:
    """The key the cache would serve for ``digest`` now (this process's memory, or the shared
    cache), or None."""
    name = key_cache_module.key_name(digest)
    return key_cache_module.read_shared(name, key_cache_module.read(name)).value


def recache(key: Any) -> None:
    """Put an edited copy back as a valid entry of the current generation."""
    name = key_cache_module.key_name(key.digest)
    key_cache_module.store(name, key, key_cache_module.read(name))


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
    entry = cached(key.digest)
    entry.expires_at = timezone.now() - timedelta(seconds=1)  # as if an hour had passed
    recache(entry)
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
    attempts = [generate_key("phxu_") for _ in range(20)]
    for attempt in attempts:
        call(api_client, attempt)
    secret = settings.PHOENIX_SECRET  # type: ignore[attr-defined]
    raw = caches[key_cache]
    assert all(raw.get(key_cache_module.key_name(digest(a, secret))) is None for a in attempts)
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
    entry = cached(key.digest)
    entry.last_used_at = stale
    recache(entry)
    call(api_client, key.plaintext)
    assert UserKey.objects.get(pk=key.pk).last_used_at > stale


def test_expired_and_inactive_owner_keys_are_never_cached(
    api_client: APIClient, key_cache: str
) -> None:
    expired = UserKeyFactory(expires_at=timezone.now() + timedelta(hours=1))
    UserKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    inactive = key_of_inactive_owner()
    for key in (expired, inactive):
        assert call(api_client, key.plaintext) == 401
        assert cached(key.digest) is None


def test_malformed_keys_never_touch_the_cache(
    api_client: APIClient, key_cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = UserKeyFactory()
    touched: list[str] = []
    cache = caches[key_cache]
    for method in ("get", "get_many", "set", "add"):
        monkeypatch.setattr(cache, method, lambda *a, m=method, **k: touched.append(m))
    bad_checksum = key.plaintext[:-1] + ("0" if key.plaintext[-1] != "0" else "1")
    for attempt in (bad_checksum, "phxu_" + "A" * 38, "phxu_short"):
        assert call(api_client, attempt) == 401
    assert touched == []


def test_stale_cached_last_used_at_costs_one_conditional_update_not_one_per_request(
    api_client: APIClient, key_cache: str
) -> None:
    """Another process already stamped the key; our cached copy is older than the interval."""
    key = UserKeyFactory()
    call(api_client, key.plaintext)
    entry = cached(key.digest)
    entry.last_used_at = timezone.now() - timedelta(minutes=10)
    recache(entry)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(10):
            assert call(api_client, key.plaintext) == 200
    assert len(queries) == 1


@pytest.mark.parametrize("cache_alias", [None, "apikeys"])
def test_sustained_use_writes_last_used_at_at_most_once_per_interval(
    api_client: APIClient, settings: object, cache_alias: str | None
) -> None:
    settings.PHOENIX_APIKEYS = {  # type: ignore[attr-defined]
        "CACHE_ALIAS": cache_alias,
        "LAST_USED_INTERVAL": timedelta(minutes=5),
    }
    key = UserKeyFactory()
    start = timezone.now()
    updates = 0
    # 121 requests, one every 6 seconds for 12 minutes: three intervals begin (0, 5, 10 min).
    for step in range(121):
        moment = start + timedelta(seconds=6 * step)
        with (
            mock.patch("phoenix_apikeys.verification.timezone.now", return_value=moment),
            CaptureQueriesContext(connection) as queries,
        ):
            assert call(api_client, key.plaintext) == 200
        updates += sum(q["sql"].startswith("UPDATE") for q in queries.captured_queries)
    assert updates == 3


def test_warm_admin_secret_costs_zero_queries(
    api_client: APIClient, key_cache: str, admin_secret: str
) -> None:
    assert call(api_client, admin_secret) == 200
    with CaptureQueriesContext(connection) as queries:
        assert call(api_client, admin_secret) == 200
    assert len(queries) == 0


def test_system_user_deactivation_stops_the_admin_secret_on_the_next_request(
    api_client: APIClient, key_cache: str, admin_secret: str
) -> None:
    assert call(api_client, admin_secret) == 200
    user = system_user()
    user.is_active = False
    user.save()
    assert call(api_client, admin_secret) == 401
    assert key_cache_module.read(key_cache_module.SYSTEM_USER).value is None


# A second process: a real interpreter against the same PostgreSQL database and Redis cache.
# SQLite's in-memory test database and the local-memory cache cannot be shared, so these run
# when the suite runs on PostgreSQL + Redis (as .ci/run does).
SHARED = os.environ.get("CACHE_URL", "").startswith("redis") and os.environ.get(
    "DATABASE_URL", ""
).startswith("postgres")
OTHER_PROCESS = """
import json, sys
import django
django.setup()
from django.test import Client
from django.test.utils import override_settings
with override_settings(PHOENIX_APIKEYS={"CACHE_ALIAS": "apikeys"}):
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "call":
            status = Client().get(
                "/whoami/", HTTP_AUTHORIZATION="Bearer " + command["key"]
            ).status_code
            print(status, flush=True)
        else:
            exec(command["code"])
            print("done", flush=True)
"""


class OtherProcess:
    """A second Django process sharing the database and the cache, driven line by line."""

    def __init__(self) -> None:
        database = connection.settings_dict
        url = (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        )
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", OTHER_PROCESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def send(self, **command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def call(self, key: str) -> int:
        return int(self.send(do="call", key=key))

    def run(self, code: str) -> None:
        assert self.send(do="run", code=code) == "done"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def other_process() -> Iterator[OtherProcess]:
    other = OtherProcess()
    yield other
    other.close()


shared_only = [
    pytest.mark.skipif(not SHARED, reason="needs DATABASE_URL=postgres… and CACHE_URL=redis…"),
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize(
    "change",
    [
        "from phoenix_apikeys.models import UserKey; UserKey.objects.get(pk={pk}).delete()",
        "from phoenix_apikeys.models import UserKey\n"
        "u = UserKey.objects.get(pk={pk}).user; u.is_active = False; u.save()",
    ],
    ids=["revocation", "owner deactivation"],
)
def test_change_in_another_process_takes_effect_on_our_next_request(
    api_client: APIClient, key_cache: str, other_process: OtherProcess, change: str
) -> None:
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200  # warm: ours is now served from the cache
    assert other_process.call(key.plaintext) == 200  # and theirs too
    other_process.run(change.format(pk=key.pk))
    assert call(api_client, key.plaintext) == 401
    assert other_process.call(key.plaintext) == 401


def test_expiry_takes_effect_in_every_process_sharing_the_cache(
    api_client: APIClient, key_cache: str, other_process: OtherProcess
) -> None:
    key = UserKeyFactory(expires_at=timezone.now() + timedelta(seconds=2))
    assert call(api_client, key.plaintext) == 200
    assert other_process.call(key.plaintext) == 200
    time.sleep(max(0.0, (key.expires_at - timezone.now()).total_seconds()) + 0.05)
    assert call(api_client, key.plaintext) == 401
    assert other_process.call(key.plaintext) == 401


def test_revocation_here_takes_effect_in_the_other_process(
    api_client: APIClient, key_cache: str, other_process: OtherProcess
) -> None:
    key = UserKeyFactory()
    assert other_process.call(key.plaintext) == 200  # their warm-up fills the shared cache
    assert call(api_client, key.plaintext) == 200
    key.delete()
    assert other_process.call(key.plaintext) == 401


for _test in (
    test_change_in_another_process_takes_effect_on_our_next_request,
    test_expiry_takes_effect_in_every_process_sharing_the_cache,
    test_revocation_here_takes_effect_in_the_other_process,
):
    for _mark in shared_only:
        _mark(_test)


# Revocation against concurrent readers ------------------------------------------------------


def test_a_reader_that_saw_the_key_before_a_committed_revocation_cannot_recache_it(
    api_client: APIClient, key_cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request reads the row, the revocation commits, then the request stores what it read:
    that entry must never be served."""
    key = UserKeyFactory()
    original = KeyManager.find_by_digests

    def read_then_revoked_elsewhere(manager: Any, candidates: list[str]) -> Any:
        found = original(manager, candidates)
        owner = key.user
        owner.is_active = False
        owner.save()
        return found

    monkeypatch.setattr(KeyManager, "find_by_digests", read_then_revoked_elsewhere)
    call(api_client, key.plaintext)  # began before the revocation: may still pass
    monkeypatch.undo()
    assert call(api_client, key.plaintext) == 401


@pytest.mark.django_db(transaction=True)
def test_an_entry_stored_while_the_revocation_commits_is_retired_at_commit(
    api_client: APIClient, key_cache: str
) -> None:
    """Invalidation happens after commit: a concurrent reader that still saw the old row
    (it could not see the uncommitted change) and stored it mid-transaction is not served."""
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200
    name = key_cache_module.key_name(key.digest)
    stale = UserKey.objects.select_related("user").get(pk=key.pk)
    with transaction.atomic():
        owner = key.user
        owner.is_active = False
        owner.save()
        # What a request on another connection does now: read generation, read old row, store.
        key_cache_module.store(name, stale, key_cache_module.read(name))
    assert call(api_client, key.plaintext) == 401


@pytest.mark.django_db(transaction=True)
def test_a_row_read_before_a_change_commits_is_not_served_when_the_commit_cannot_be_told(
    api_client: APIClient, key_cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache answers before the change writes, then cannot be told of its commit: a
    concurrent reader's copy of the old row must still never be served."""
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200
    name = key_cache_module.key_name(key.digest)
    stale = UserKey.objects.select_related("user").get(pk=key.pk)
    told = key_cache_module._new_versions

    def only_before_the_write(cache: Any, names: list[str], mark: str = "") -> bool:
        return told(cache, names, mark) if mark else False  # the commit's call is lost

    monkeypatch.setattr(key_cache_module, "_new_versions", only_before_the_write)
    monkeypatch.setattr(key_cache_module.time, "sleep", lambda seconds: None)
    with transaction.atomic():
        owner = key.user
        owner.is_active = False
        owner.save()
        # What a request on another connection does now: read the cache, read the old row,
        # store it.
        key_cache_module.store(name, stale, key_cache_module.read(name))
    assert key_cache_module.read(name).value is None
    assert call(api_client, key.plaintext) == 401


def test_a_login_does_not_empty_the_cache(api_client: APIClient, key_cache: str) -> None:
    key, other = UserKeyFactory(), UserFactory()
    call(api_client, key.plaintext)
    update_last_login(None, other)
    with CaptureQueriesContext(connection) as queries:
        assert call(api_client, key.plaintext) == 200
    assert len(queries) == 0


def test_a_rolled_back_revocation_leaves_the_key_working(
    api_client: APIClient, key_cache: str
) -> None:
    key = UserKeyFactory()
    call(api_client, key.plaintext)
    with pytest.raises(RuntimeError), transaction.atomic():
        key.delete()
        raise RuntimeError("rolled back")
    assert call(api_client, key.plaintext) == 200


def test_removing_a_fallback_secret_stops_keys_not_yet_rekeyed(
    api_client: APIClient, key_cache: str, settings: Any
) -> None:
    old_secret = settings.PHOENIX_SECRET
    used, unused = UserKeyFactory(), UserKeyFactory()
    settings.PHOENIX_SECRET = "tests-only-rotated-secret-9876543210abcdef"
    settings.PHOENIX_SECRET_FALLBACKS = [old_secret]
    assert call(api_client, used.plaintext) == 200  # re-keyed to the new secret on use
    settings.PHOENIX_SECRET_FALLBACKS = []
    assert call(api_client, used.plaintext) == 200
    assert call(api_client, unused.plaintext) == 401


# A per-process cache is never used to serve keys ---------------------------------------------


def test_a_per_process_cache_is_not_used_to_serve_keys(
    api_client: APIClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "local"}
    key_cache_module._refused.clear()
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200
    # Another process revokes it: this process sees no signal, only the database.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {UserKey._meta.db_table} WHERE id = %s", [key.pk])
    assert call(api_client, key.plaintext) == 401
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "per-process" in r.message]
    assert len(errors) == 1
    assert caches["local"].get(key_cache_module.key_name(key.digest)) is None


@pytest.mark.parametrize("setting", ["CACHE_ALIAS", "THROTTLE_CACHE_ALIAS"])
def test_an_alias_missing_from_caches_is_no_cache_not_a_server_error(
    api_client: APIClient, settings: Any, caplog: pytest.LogCaptureFixture, setting: str
) -> None:
    """``check`` reports it (E025); at run time keys are still verified and revoked."""
    settings.PHOENIX_APIKEYS = {setting: "no-such-alias", "FAILED_AUTH_LIMIT": 5}
    key_cache_module._unknown.clear()
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200
    assert call(api_client, generate_key("phxu_")) == 401
    key.delete()
    assert call(api_client, key.plaintext) == 401
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "no-such-alias" in r.message]
    assert len(errors) == 1


# One revocation, one answer, one signal ------------------------------------------------------


def test_a_delete_that_loses_a_race_announces_nothing(
    admin_secret: str, django_capture_on_commit_callbacks: Any
) -> None:
    """Two deletes of one key: the second found the key, but the first removed it first."""
    key = UserKeyFactory()
    pk = key.pk
    revoked: list[Any] = []
    key_revoked.connect(lambda **kwargs: revoked.append(kwargs["key"].pk), weak=False)
    try:
        stale_copy = UserKey.objects.get(pk=pk)
        with django_capture_on_commit_callbacks(execute=True):
            assert key.delete()[0] == 1
            assert stale_copy.delete()[0] == 0
    finally:
        key_revoked.receivers.clear()
    assert revoked == [pk]


def test_of_two_rest_deletes_of_one_key_the_loser_gets_404(
    api_client: APIClient, admin_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = UserKeyFactory()
    original = rest_views.find_key

    def found_then_deleted_by_another_request(model: Any, value: str) -> Any:
        found = original(model, value)
        UserKey.objects.get(pk=found.pk).delete()  # the other request wins
        return found

    monkeypatch.setattr(rest_views, "find_key", found_then_deleted_by_another_request)
    response = api_client.delete(
        f"/v1/user/api_keys/{key_id(KeyKind.USER, key.pk)}",
        HTTP_AUTHORIZATION=f"Bearer {admin_secret}",
    )
    assert response.status_code == 404


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres… (concurrent connections)",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_of_one_key_give_one_204_and_one_signal(admin_secret: str) -> None:
    key = UserKeyFactory()
    pk = key.pk
    url = f"/v1/user/api_keys/{key_id(KeyKind.USER, pk)}"
    revoked: list[Any] = []
    key_revoked.connect(lambda **kwargs: revoked.append(kwargs["key"].pk), weak=False)
    start = threading.Barrier(12)

    def delete() -> int:
        start.wait()
        try:
            client = APIClient()
            return client.delete(url, HTTP_AUTHORIZATION=f"Bearer {admin_secret}").status_code
        finally:
            connections.close_all()

    try:
        with ThreadPoolExecutor(12) as pool:
            statuses = sorted(pool.map(lambda _: delete(), range(12)))
    finally:
        key_revoked.receivers.clear()
    assert statuses == [204] + [404] * 11
    assert revoked == [pk]


# The cache failing: an accelerator, never a dependency ----------------------------------------


def test_keys_and_the_admin_secret_verify_while_the_cache_refuses(
    api_client: APIClient, settings: Any, admin_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "down"}
    key_cache_module._breakers.clear()
    key = UserKeyFactory()
    for _ in range(5):
        assert call(api_client, key.plaintext) == 200
        assert call(api_client, admin_secret) == 200
    assert call(api_client, generate_key("phxu_")) == 401
    outage = [r for r in caplog.records if r.levelname == "ERROR" and "'down' failed" in r.message]
    assert len(outage) == 1


def test_an_outage_costs_one_cache_call_per_interval(
    api_client: APIClient, flaky: type[FlakyCache], settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "flaky", "CACHE_RETRY_INTERVAL": 60}
    key = UserKeyFactory()
    flaky.broken, flaky.calls = True, 0
    for _ in range(10):
        assert call(api_client, key.plaintext) == 200
    assert flaky.calls == 1


def test_a_frozen_cache_costs_one_timeout_per_interval(
    api_client: APIClient, settings: Any
) -> None:
    """A server that accepts and never answers, as Redis under SIGSTOP: bounded by the socket
    timeout once, then skipped."""
    frozen = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        frozen.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(frozen.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = frozen.getsockname()[1]
    settings.CACHES = {
        **settings.CACHES,
        "frozen": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.05, "SOCKET_TIMEOUT": 0.05},
        },
    }
    # The shared path's breaker; each process's memory has its own thread (test_coherence).
    settings.PHOENIX_APIKEYS = {
        "CACHE_ALIAS": "frozen",
        "CACHE_RETRY_INTERVAL": 60,
        "LOCAL_CACHE": False,
    }
    key_cache_module._breakers.clear()
    try:
        key = UserKeyFactory()
        started = time.monotonic()
        statuses = [call(api_client, key.plaintext) for _ in range(20)]
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for connection_ in held:
            connection_.close()
        frozen.close()
    assert statuses == [200] * 20
    assert len(held) == 1  # one attempt, then the breaker kept every other request away
    assert elapsed < 5  # a bound on the stall, not a benchmark: without the breaker, 20 timeouts


def test_the_cache_returning_is_logged_once_and_used_again(
    api_client: APIClient, flaky: type[FlakyCache], caplog: pytest.LogCaptureFixture
) -> None:
    key = UserKeyFactory()
    flaky.broken = True
    assert call(api_client, key.plaintext) == 200
    flaky.broken = False
    assert call(api_client, key.plaintext) == 200  # stores it again
    with CaptureQueriesContext(connection) as queries:
        assert call(api_client, key.plaintext) == 200
    assert len(queries) == 0
    messages = [r.message for r in caplog.records if "'flaky'" in r.message]
    assert len(messages) == 2 and "answers again" in messages[1]


@pytest.mark.parametrize("revoke", ["delete", "deactivate"])
def test_a_revocation_the_cache_cannot_hear_of_is_refused_not_reported_done(
    api_client: APIClient, flaky: type[FlakyCache], revoke: str
) -> None:
    """A frozen Redis thaws with its entries: a revocation it missed would be undone then."""
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200  # cached
    flaky.broken = True

    def make_revocation() -> None:
        if revoke == "delete":
            UserKey.objects.get(pk=key.pk).delete()
        else:
            owner = UserKey.objects.select_related("user").get(pk=key.pk).user
            owner.is_active = False
            owner.save()

    with pytest.raises(key_cache_module.CacheUnreachable), transaction.atomic():
        make_revocation()  # in a transaction of its own, as in a request
    assert UserKey.objects.usable().filter(pk=key.pk).exists()  # rolled back, as reported
    flaky.broken = False
    make_revocation()
    assert call(api_client, key.plaintext) == 401


def test_a_user_no_key_acts_as_saves_while_the_cache_is_down(flaky: type[FlakyCache]) -> None:
    user = UserFactory()
    flaky.broken = True
    user.first_name = "Ada"
    user.save()  # no key acts as them: nothing cached to retire
    user.refresh_from_db()
    assert user.first_name == "Ada"


def test_a_cache_restored_from_an_older_snapshot_serves_no_revoked_key(
    api_client: APIClient, key_cache: str
) -> None:
    """Redis restarted from an RDB/AOF file, or a failover to a lagging replica, brings back a
    retired generation together with the entries it stamped."""
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200
    raw = caches[key_cache]
    name = key_cache_module.key_name(key.digest)
    snapshot = {n: raw.get(n) for n in (name, key_cache_module.GENERATION)}
    key.delete()
    assert call(api_client, key.plaintext) == 401
    for n, value in snapshot.items():  # the restore
        raw.set(n, value, None)
    assert call(api_client, key.plaintext) == 401


def test_storing_a_key_again_never_stretches_its_life(
    api_client: APIClient, key_cache: str, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": key_cache, "CACHE_TIMEOUT": 300}
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200
    name = key_cache_module.key_name(key.digest)
    later = time.time() + 301
    with mock.patch("phoenix_apikeys.cache.time.time", return_value=later):
        assert key_cache_module.read(name).value is None  # read from the database again


@pytest.mark.django_db(transaction=True)
def test_every_surface_says_a_refused_revocation_was_refused(
    api_client: APIClient, flaky: type[FlakyCache], admin_secret: str
) -> None:
    from django.core.management import CommandError, call_command

    from .test_admin import logged_in

    key = UserKeyFactory()
    flaky.broken = True
    url = f"/v1/user/api_keys/{key_id(KeyKind.USER, key.pk)}"
    response = api_client.delete(url, HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "nothing was changed" in response.json()["detail"]
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("revoke_api_key", key_id(KeyKind.USER, key.pk))
    admin_page = f"/admin/phoenix_apikeys/userkey/{key.pk}/delete/"
    response = logged_in(SuperuserFactory()).post(admin_page, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "nothing was changed" in response.content.decode()
    assert UserKey.objects.filter(pk=key.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_user_saved_outside_a_transaction_retires_what_readers_stored_before_the_write(
    api_client: APIClient, key_cache: str
) -> None:
    """Autocommit: the second retirement must follow the UPDATE, not precede it."""
    key = UserKeyFactory()
    assert call(api_client, key.plaintext) == 200
    name = key_cache_module.key_name(key.digest)
    stale = UserKey.objects.select_related("user").get(pk=key.pk)

    def reader_between_retirement_and_write(sender: Any, instance: Any, **kwargs: Any) -> None:
        key_cache_module.store(name, stale, key_cache_module.read(name))

    pre_save.connect(reader_between_retirement_and_write, sender=type(key.user), weak=False)
    try:
        owner = key.user
        owner.is_active = False
        owner.save()
    finally:
        pre_save.disconnect(reader_between_retirement_and_write, sender=type(key.user))
    assert call(api_client, key.plaintext) == 401


def test_a_requests_copy_of_a_kept_key_shares_no_state_with_it() -> None:
    """Permissions Django caches on the copy's owner, or an owner set on the copy, never reach
    the kept key (which the next request copies again)."""
    key = UserKeyFactory()
    kept = UserKey.objects.select_related("user").get(pk=key.pk)
    owner = kept.user
    served = coherence.own_copy(kept)
    assert served.user.has_perm("auth.view_group") is False  # caches permissions on the copy
    served.user = UserFactory()
    assert kept.user is owner and not hasattr(owner, "_perm_cache")
    assert (served.pk, served.digest) == (kept.pk, kept.digest)
