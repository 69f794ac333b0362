"""Each process's memory of verified keys (LOCAL_CACHE): a warm key costs no round trip, and a
change returns only once every process with a current lease has dropped it, or is refused."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from phoenix_apikeys import cache, coherence, throttle, verification
from phoenix_apikeys.cache import CacheUnreachable
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import UserKey
from phoenix_apikeys.throttle import TooManyFailures
from phoenix_apikeys.verification import CredentialRejected, averify_credential, verify_credential

from .factories import UserKeyFactory
from .test_cache import SHARED, OtherProcess

pytestmark = pytest.mark.skipif(
    not os.environ.get("CACHE_URL", "").startswith("redis"), reason="needs CACHE_URL=redis…"
)


def until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def memory(key_cache: str) -> coherence.Memory:
    found = coherence.memory(cache._memory_url(key_cache))
    assert found is not None
    until(found.serving)
    return found


@pytest.fixture
def redis_client(key_cache: str) -> Iterator[Any]:
    client = coherence._client(str(cache._memory_url(key_cache)))
    yield client
    client.zrem(coherence.PROCESSES, "ghost")
    client.close()


def warm(key: Any) -> None:
    verify_credential(key.plaintext)  # from the database; kept in memory
    until(lambda: cache.read(cache.key_name(key.digest)).value is not None)


@pytest.mark.django_db
def test_a_warm_key_costs_no_round_trip(
    memory: coherence.Memory, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    key = UserKeyFactory()
    warm(key)

    def no_round_trip(*args: Any) -> None:
        raise AssertionError("the shared cache was asked")

    monkeypatch.setattr(cache, "_read", no_round_trip)
    with django_assert_num_queries(0):
        for _ in range(3):
            assert verify_credential(key.plaintext)[1].pk == key.pk


@pytest.mark.django_db
def test_a_kept_key_is_not_answered_from_memory_once_it_has_expired(
    memory: coherence.Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = UserKeyFactory(expires_at=timezone.now() + timedelta(minutes=5))
    warm(key)

    def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the warm path left the event loop")

    with monkeypatch.context() as patched:
        patched.setattr(verification, "verify_credential", no_thread)
        assert async_to_sync(averify_credential)(key.plaintext)[1].pk == key.pk  # from memory
    later = timezone.now() + timedelta(minutes=6)
    monkeypatch.setattr(verification.timezone, "now", lambda: later)
    with pytest.raises(CredentialRejected, match="expired"):
        async_to_sync(averify_credential)(key.plaintext)
    with pytest.raises(CredentialRejected, match="expired"):
        verify_credential(key.plaintext)


@pytest.mark.django_db
def test_a_restricted_key_is_never_answered_from_memory_alone(
    memory: coherence.Memory, django_assert_num_queries: Any
) -> None:
    key = UserKeyFactory(remaining_uses=5)
    warm(key)
    with django_assert_num_queries(1):  # its use is spent in the database, every time
        assert verify_credential(key.plaintext)[1].pk == key.pk
    key.refresh_from_db()
    assert key.remaining_uses == 3


@pytest.mark.django_db
def test_each_request_gets_its_own_copy_so_a_permission_taken_away_counts(
    memory: coherence.Memory,
) -> None:
    from django.contrib.auth.models import Permission

    from .factories import UserFactory

    owner = UserFactory()
    owner.user_permissions.add(Permission.objects.get(codename="view_group"))
    key = UserKeyFactory(user=owner)
    warm(key)
    assert verify_credential(key.plaintext)[0].has_perm("auth.view_group")  # cached on that copy
    owner.user_permissions.clear()
    user, served = verify_credential(key.plaintext)
    assert served.pk == key.pk and not user.has_perm("auth.view_group")


def reachable(principal: Any) -> list[Any]:
    """Every model instance a principal holds, through the related objects each one holds."""
    found: dict[int, Any] = {}
    todo = [item for item in principal if hasattr(item, "_state")]
    while todo:
        instance = todo.pop()
        if instance is not None and id(instance) not in found:
            found[id(instance)] = instance
            todo.extend(instance._state.fields_cache.values())
    return list(found.values())


@pytest.mark.django_db
@pytest.mark.parametrize("credential", ["admin secret", "user key"])
def test_no_object_one_request_was_given_reaches_another(
    memory: coherence.Memory, admin_secret: str, credential: str
) -> None:
    """The admin secret's user holds its SystemUser row, which holds the user again: the whole
    graph is copied, for memory when it keeps it and for each request it serves."""
    if credential == "admin secret":
        plaintext, name = admin_secret, cache.SYSTEM_USER
    else:
        key = UserKeyFactory()
        plaintext, name = key.plaintext, cache.key_name(key.digest)
    given = reachable(verify_credential(plaintext))  # from the database: what memory keeps
    until(lambda: memory.recall(name) is not None)
    given += reachable(verify_credential(plaintext))  # from memory
    for instance in given:  # what a view might do to the objects it was given
        instance.poisoned = True
    later = reachable(verify_credential(plaintext))
    assert len(later) >= 2
    assert not {id(instance) for instance in later} & {id(instance) for instance in given}
    assert not any(hasattr(instance, "poisoned") for instance in later)


def test_objects_that_hold_each_other_are_copied_once_each() -> None:
    from django.contrib.auth import get_user_model

    key = UserKey(name="k", user=get_user_model()(username="owner"))
    key.user._state.fields_cache["back"] = key  # the owner holds the key again
    clone = coherence.own_copy(key)
    assert clone is not key and clone.user is not key.user
    assert clone.user._state.fields_cache["back"] is clone


@pytest.mark.django_db
def test_a_revocation_drops_the_key_from_memory_before_it_returns(memory: Any) -> None:
    key, other = UserKeyFactory(), UserKeyFactory()
    warm(key)
    warm(other)
    assert UserKey.objects.revoke(key)
    with pytest.raises(CredentialRejected):
        verify_credential(key.plaintext)
    assert memory.recall(cache.key_name(other.digest)) is not None  # that key alone


def test_a_forked_child_starts_its_own_memory_and_acknowledges_drops(memory: Any) -> None:
    """gunicorn --preload: the parent's memory (its thread, its connections, what it holds)
    does not survive a fork; the child starts its own, and a drop waits for the child too."""
    name = cache.key_name("parent-only")
    assert memory.keep(name, cache.Entry(value="parent's", verified_at=time.time()), memory.drops)
    url = str(cache._memory_url(cache._key_cache_alias()))
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report, then leave without running the parent's teardown
        try:
            own = coherence.memory(url)
            assert own is not None and own is not memory and own.thread.is_alive()
            assert own.recall(name) is None  # nothing of the parent's
            until(own.serving)
            os.write(writer, b"serving\n")
            until(lambda: bool(own.dropped))  # the parent's drop reached it
            os.write(writer, b"dropped\n")
        except BaseException as error:
            os.write(writer, f"failed {error!r}\n".encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as report:
        assert report.readline() == "serving\n"
        assert coherence.drop_everywhere(url, [name])  # waited for the child's acknowledgement
        assert report.readline() == "dropped\n"
    os.waitpid(child, 0)
    assert memory.recall(name) is None


@pytest.mark.django_db
def test_a_process_that_does_not_acknowledge_makes_the_change_wait_then_refused(
    memory: Any, redis_client: Any
) -> None:
    key = UserKeyFactory()
    redis_client.eval(coherence.RENEW, 1, coherence.PROCESSES, "ghost", 30)  # alive, deaf
    started = time.monotonic()
    with pytest.raises(CacheUnreachable):
        UserKey.objects.revoke(key)
    assert time.monotonic() - started <= coherence.LEASE + 1.5
    assert UserKey.objects.filter(pk=key.pk).exists()  # nothing changed


@pytest.mark.django_db
def test_a_process_whose_lease_lapses_is_not_waited_for_past_it(
    memory: Any, redis_client: Any
) -> None:
    key = UserKeyFactory()
    redis_client.eval(coherence.RENEW, 1, coherence.PROCESSES, "ghost", 0.5)  # then frozen
    started = time.monotonic()
    assert UserKey.objects.revoke(key)
    assert time.monotonic() - started < coherence.LEASE


@pytest.mark.django_db
def test_a_value_read_before_a_drop_is_never_kept(memory: Any) -> None:
    name = cache.key_name("0" * 64)
    mark = memory.drops
    memory.forget([name], until=None)  # a drop arrives while the read is under way
    memory.keep(name, cache.Entry(value="stale", verified_at=time.time()), mark)
    assert memory.recall(name) is None
    memory.keep(name, cache.Entry(value="fresh", verified_at=time.time()), memory.drops)
    assert memory.recall(name).value == "fresh"


@pytest.mark.django_db
def test_a_drop_of_another_key_does_not_stop_a_read_from_being_kept(memory: Any) -> None:
    """Revocations of other keys (another process's, say) never send this key to the database
    on every request; a drop of everything (a resubscription) does stop it."""
    name, other = cache.key_name("0" * 64), cache.key_name("1" * 64)
    mark = memory.drops
    memory.forget([other], until=None)
    memory.keep(name, cache.Entry(value="kept", verified_at=time.time()), mark)
    assert memory.recall(name).value == "kept"
    mark = memory.drops
    memory.clear()
    memory.keep(name, cache.Entry(value="stale", verified_at=time.time()), mark)
    assert memory.recall(name) is None


@pytest.mark.django_db
def test_a_process_that_cannot_hear_stops_serving_from_memory(memory: Any) -> None:
    key = UserKeyFactory()
    warm(key)
    memory.healthy_until = 0.0  # as when its heartbeat stops coming back
    assert memory.recall(cache.key_name(key.digest)) is None


WARM_UNTIL_IN_MEMORY = """
import time
from django.test import Client
from phoenix_apikeys import cache, coherence
from phoenix_apikeys.conf import DEFAULTS, phoenix_settings
DEFAULTS["FAILED_AUTH_LIMIT"] = None  # the suite's own failures share this address
phoenix_settings.reload()
deadline = time.monotonic() + 5
status = None
while not (coherence._memory and coherence._memory.recall(cache.key_name({digest!r}))):
    assert time.monotonic() < deadline, ("never served from memory", status)
    status = Client().get("/whoami/", HTTP_AUTHORIZATION="Bearer {plaintext}").status_code
    time.sleep(0.02)
"""


@pytest.mark.skipif(not SHARED, reason="needs DATABASE_URL=postgres… and CACHE_URL=redis…")
@pytest.mark.django_db(transaction=True)
def test_a_revocation_here_is_refused_by_the_other_process_from_its_next_request(
    key_cache: str, memory: Any
) -> None:
    key = UserKeyFactory()
    other = OtherProcess()
    try:
        other.run(WARM_UNTIL_IN_MEMORY.format(digest=key.digest, plaintext=key.plaintext))
        assert other.call(key.plaintext) == 200  # from its memory
        assert UserKey.objects.revoke(key)
        assert other.call(key.plaintext) == 401
    finally:
        other.close()


def shared_value(name: str) -> Any:
    return cache.guarded(cache._key_cache_alias(), lambda c: cache._read(c, name), cache.Entry())


@pytest.mark.django_db
def test_a_guess_costs_no_round_trip_to_the_shared_cache(
    memory: coherence.Memory, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    def no_round_trip(*args: Any) -> None:
        raise AssertionError("the shared cache was asked")

    monkeypatch.setattr(cache, "_read", no_round_trip)
    with django_assert_num_queries(1), pytest.raises(CredentialRejected):
        verify_credential(generate_key("phxu_"))


@pytest.mark.django_db
def test_a_key_read_from_the_database_is_kept_and_shared(memory: coherence.Memory) -> None:
    key = UserKeyFactory()
    verify_credential(key.plaintext)
    name = cache.key_name(key.digest)
    assert memory.recall(name) is not None
    assert shared_value(name).value.pk == key.pk  # for the other processes


@pytest.mark.django_db
def test_a_value_read_before_a_change_is_neither_kept_nor_shared(
    memory: coherence.Memory,
) -> None:
    key = UserKeyFactory()
    name = cache.key_name(key.digest)
    entry = cache.read(name)  # a miss: the database is read next...
    assert entry.unread and entry.value is None
    cache.retire([name], "default")  # ...while a change drops the name and commits
    cache.store(name, key, entry, until=timezone.now() + timedelta(minutes=1))
    assert memory.recall(name) is None
    assert shared_value(name).value is None


@pytest.mark.django_db
def test_from_a_throttled_address_a_key_another_process_verified_still_works(
    memory: coherence.Memory, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys", "FAILED_AUTH_LIMIT": 2}
    key = UserKeyFactory()
    verify_credential(key.plaintext)
    memory.clear()  # as if another process had verified it: only the shared cache holds it
    for _ in range(3):
        with pytest.raises((CredentialRejected, TooManyFailures)):
            try:
                verify_credential(generate_key("phxu_"), "192.0.2.9")
            except CredentialRejected:
                throttle.count_failure("192.0.2.9")
                raise
    with pytest.raises(TooManyFailures):
        verify_credential(generate_key("phxu_"), "192.0.2.9")
    assert verify_credential(key.plaintext, "192.0.2.9")[1].pk == key.pk
