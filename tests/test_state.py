"""A key's state has one owner, the manager: no writer brings a revoked key back or undoes a
rotation, state is read from the key (never from the audit trail), each change retires that
key's cached entries alone, inventories are bounded, and keys are read from the primary."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys.admin.keys import UserKeyAdmin
from phoenix_apikeys.models import KeyEvent, SystemKey, UserKey, revoke_leaked
from phoenix_apikeys.verification import CredentialRejected, verify_credential

from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory
from .test_admin import USER_ADD, USER_LIST, add_key, logged_in, whoami

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def stored(key: Any) -> Any:
    return type(key)._default_manager.filter(pk=key.pk).first()


# A revoked key never returns -----------------------------------------------------------------


def test_a_loaded_key_saved_after_its_revocation_is_not_brought_back() -> None:
    key = UserKeyFactory()
    loaded = UserKey.objects.get(pk=key.pk)
    assert UserKey.objects.revoke(key)
    loaded.name = "renamed"
    with pytest.raises(UserKey.DoesNotExist, match="revoked meanwhile"):
        loaded.save()
    assert stored(key) is None
    assert whoami(key.plaintext) == 401


def test_a_loaded_key_saved_after_a_rotation_keeps_the_rotations_expiry() -> None:
    key = UserKeyFactory()
    loaded = UserKey.objects.get(pk=key.pk)
    new, _ = UserKey.objects.rotate(key, grace_period=HOUR)
    loaded.name = "renamed"
    loaded.save()
    after = stored(key)
    assert (after.name, after.expires_at, after.replaced_by) == (
        "renamed",
        key.expires_at,
        new.key_id,
    )
    assert after.expires_at is not None and after.expires_at <= timezone.now() + HOUR


@pytest.mark.parametrize("field", ["expires_at", "digest", "user", "replaced_by", "scopes"])
def test_a_save_never_writes_a_keys_state(field: str) -> None:
    key = UserKeyFactory()
    with pytest.raises(TypeError, match="manager"):
        key.save(update_fields=[field])


def test_keys_are_made_only_by_their_manager() -> None:
    with pytest.raises(TypeError, match="create_key"):
        UserKey(user=UserFactory(), name="raw", digest="0" * 64, hint="0000").save()
    assert not UserKey.objects.exists()


def loaded_before(monkeypatch: pytest.MonkeyPatch, key: Any, change: Any) -> None:
    """The admin's POST works on the key as loaded before ``change`` committed elsewhere."""
    loaded = UserKey.objects.get(pk=key.pk)
    change(key)

    def stale(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        return loaded

    monkeypatch.setattr(UserKeyAdmin, "get_object", stale)


def test_an_admin_rename_racing_a_revocation_says_so_and_recreates_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = StaffFactory()
    key = UserKeyFactory(user=owner)
    loaded_before(monkeypatch, key, UserKey.objects.revoke)
    client = logged_in(owner)
    response = client.post(f"{USER_LIST}{key.pk}/change/", {"name": "x", "description": ""})
    assert response.status_code == 302
    messages = [str(message) for message in response.wsgi_request._messages]
    assert any("revoked meanwhile; nothing was saved" in message for message in messages)
    assert stored(key) is None
    assert whoami(key.plaintext) == 401
    assert [e.action for e in KeyEvent.objects.filter(key_id=key.key_id)] == ["revoked", "created"]


def test_an_admin_rename_racing_a_rotation_keeps_its_grace_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = StaffFactory()
    key = UserKeyFactory(user=owner, expires_at=None)
    loaded_before(monkeypatch, key, lambda key: UserKey.objects.rotate(key, grace_period=HOUR))
    response = logged_in(owner).post(
        f"{USER_LIST}{key.pk}/change/", {"name": "renamed", "description": ""}
    )
    assert response.status_code == 302
    after = stored(key)
    assert after.name == "renamed"
    assert after.expires_at is not None and after.expires_at <= timezone.now() + HOUR
    assert after.replaced_by
    with pytest.raises(ValidationError, match="already replaced"):
        UserKey.objects.rotate(after, grace_period=HOUR)


# Rotation state lives on the key ------------------------------------------------------------


def test_pruning_the_audit_trail_leaves_a_replaced_key_replaced() -> None:
    key = UserKeyFactory()
    new, _ = UserKey.objects.rotate(key, grace_period=HOUR)
    KeyEvent.objects.prune_older_than(timezone.now() + timedelta(days=1))
    assert not KeyEvent.objects.exists()
    with pytest.raises(ValidationError, match="already replaced"):
        UserKey.objects.rotate(UserKey.objects.get(pk=key.pk), grace_period=HOUR)
    assert stored(key).replaced_by == new.key_id
    assert UserKey.objects.count() == 2


def test_expiry_notices_skip_a_key_already_replaced(settings: Any) -> None:
    from django.core import mail

    settings.PHOENIX_APIKEYS = {"EXPIRY_NOTICE_THRESHOLDS": [timedelta(days=1)]}
    key = UserKeyFactory(expires_at=timezone.now() + timedelta(days=30))
    UserKey.objects.rotate(key, grace_period=HOUR)  # the old key now ends within a day
    call_command("notify_expiring_keys", stdout=open(os.devnull, "w"))
    assert not [message for message in mail.outbox if key.key_id in message.body]


# Each change retires that key alone ------------------------------------------------------------


def warm(*keys: Any) -> None:
    for key in keys:
        verify_credential(key.plaintext)


def test_a_revocation_retires_that_keys_cached_entry_alone(
    key_cache: str, django_assert_num_queries: Any
) -> None:
    revoked, *others = [UserKeyFactory(), UserKeyFactory(), SystemKeyFactory()]
    warm(revoked, *others)
    assert UserKey.objects.revoke(revoked)
    with django_assert_num_queries(0):  # still served from the cache
        warm(*others)
    with pytest.raises(CredentialRejected):
        verify_credential(revoked.plaintext)


def test_a_leak_report_retires_the_reported_key_alone(
    key_cache: str, django_assert_num_queries: Any
) -> None:
    reported, other = UserKeyFactory(), UserKeyFactory()
    warm(reported, other)
    revoke_leaked([reported.plaintext], "192.0.2.9")
    with django_assert_num_queries(0):
        warm(other)
    assert stored(reported) is None


def test_an_owner_change_retires_that_owners_keys_alone(
    key_cache: str, django_assert_num_queries: Any
) -> None:
    leaving, staying = UserFactory(), UserFactory()
    theirs, other = UserKeyFactory(user=leaving), UserKeyFactory(user=staying)
    warm(theirs, other)
    leaving.is_active = False
    leaving.save()
    with django_assert_num_queries(0):
        warm(other)
    with pytest.raises(CredentialRejected, match="owner inactive"):
        verify_credential(theirs.plaintext)


def test_a_chain_of_rotations_with_grace_never_passes_the_limit(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEYS_PER_USER": 3}
    key = UserKeyFactory()
    with pytest.raises(ValidationError, match="MAX_KEYS_PER_USER"):
        for _ in range(5):
            key, _plaintext = UserKey.objects.rotate(key, grace_period=HOUR)
    assert UserKey.objects.usable().filter(user=key.user).count() == 3


def test_no_key_is_made_for_an_owner_deactivated_meanwhile() -> None:
    key = UserKeyFactory()
    type(key.user)._default_manager.filter(pk=key.user_id).update(is_active=False)
    with pytest.raises(ValidationError, match="inactive"):
        UserKey.objects.rotate(key)  # the owner as loaded with the key was still active
    assert UserKey.objects.count() == 1


def test_an_owner_change_retires_the_keys_committed_before_it_commits(
    key_cache: str, django_capture_on_commit_callbacks: Any
) -> None:
    from phoenix_apikeys import cache
    from phoenix_apikeys.conf import phoenix_settings
    from phoenix_apikeys.keys import digest, display_hint, generate_key

    owner = UserFactory()
    plaintext = generate_key("phxu_")
    secret = phoenix_settings.secrets.secret
    assert secret is not None
    with django_capture_on_commit_callbacks(execute=True):
        owner.is_active = False
        owner.save()
        # Meanwhile another transaction commits a key for them (a rotation), and a request that
        # still sees them active caches it.
        late = UserKey(user=owner, name="late", digest=digest(plaintext, secret))
        late.hint = display_hint(plaintext)
        late.save(force_insert=True)
        seen = UserKey.objects.select_related("user").get(pk=late.pk)
        seen.user.is_active = True
        name = cache.key_name(late.digest)
        cache.store(name, seen, cache.read(name))
        assert verify_credential(plaintext)[1].pk == late.pk  # served from the cache
    with pytest.raises(CredentialRejected, match="owner inactive"):
        verify_credential(plaintext)


def test_deleting_a_user_revokes_each_of_their_keys_through_the_manager(key_cache: str) -> None:
    owner = UserFactory()
    keys = UserKeyFactory.create_batch(2, user=owner)
    warm(*keys)
    owner.delete()
    for key in keys:
        with pytest.raises(CredentialRejected):
            verify_credential(key.plaintext)
    revoked = KeyEvent.objects.filter(action="revoked").values_list("key_id", flat=True)
    assert sorted(revoked) == sorted(key.key_id for key in keys)


# Bounded inventories --------------------------------------------------------------------------


def test_a_user_at_the_limit_makes_no_more_keys_on_any_surface(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEYS_PER_USER": 2}
    owner = StaffFactory()
    first, second = UserKeyFactory.create_batch(2, user=owner)
    api = APIClient()
    api.force_login(owner)
    response = api.post("/v1/user/api_keys", {"data": {"name": "third"}}, format="json")
    assert response.status_code == 422
    assert "MAX_KEYS_PER_USER" in response.json()["detail"]
    form = add_key(logged_in(owner), USER_ADD).context["adminform"].form
    assert "MAX_KEYS_PER_USER" in str(form.non_field_errors())
    with pytest.raises(CommandError, match="MAX_KEYS_PER_USER"):
        call_command("create_user_key", user=owner.username, name="third")
    assert UserKey.objects.filter(user=owner).count() == 2
    with pytest.raises(ValidationError, match="MAX_KEYS_PER_USER"):  # the old one lives on
        UserKey.objects.rotate(first, grace_period=HOUR)
    first, _plaintext = UserKey.objects.rotate(first, grace_period=timedelta(0))  # in its place
    expired = UserKey.objects.filter(pk__in=[first.pk, second.pk])
    expired.update(expires_at=timezone.now())  # expired keys do not count
    response = api.post("/v1/user/api_keys", {"data": {"name": "4th"}}, format="json")
    assert response.status_code == 201


def test_system_keys_are_bounded_too(settings: Any, admin_secret: str) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_SYSTEM_KEYS": 1}
    SystemKeyFactory()
    response = APIClient().post(
        "/v1/system/api_keys",
        {"data": {"name": "second"}},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {admin_secret}",
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("data: There is 1 live system key, ")
    assert SystemKey.objects.count() == 1


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres… (concurrent connections)",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_pass_the_limit(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEYS_PER_USER": 3}
    owner = UserFactory()
    start = threading.Barrier(8)

    def create(number: int) -> str:
        start.wait()
        try:
            UserKey.objects.create_key(user=owner, name=f"k{number}")
            return "made"
        except ValidationError:
            return "refused"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(create, range(8)))
    assert outcomes == ["made"] * 3 + ["refused"] * 5
    assert UserKey.objects.filter(user=owner).count() == 3


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres… (concurrent connections)",
)
@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_while_they_rotate_never_deadlocks() -> None:
    """Both take the owner's row before any key's row."""
    for _ in range(5):
        owner = UserFactory()
        key = UserKeyFactory(user=owner)
        start = threading.Barrier(2)

        def rotate_in_a_loop(key: Any = key, start: Any = start) -> list[str]:
            start.wait()
            outcomes = []
            try:
                for _ in range(20):
                    try:
                        key, _plaintext = UserKey.objects.rotate(key, grace_period=HOUR)
                        outcomes.append("rotated")
                    except (ValidationError, UserKey.DoesNotExist):
                        outcomes.append("refused")
                return outcomes
            finally:
                connections.close_all()

        def delete(owner: Any = owner, start: Any = start) -> list[str]:
            start.wait()
            try:
                owner.delete()
                return ["deleted"]
            finally:
                connections.close_all()

        with ThreadPoolExecutor(2) as pool:
            rotating, deleting = pool.submit(rotate_in_a_loop), pool.submit(delete)
            assert deleting.result() == ["deleted"]  # no deadlock: it would raise here
            rotating.result()
        assert not UserKey.objects.filter(user=owner.pk).exists()


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres… (concurrent connections)",
)
@pytest.mark.django_db(transaction=True)
def test_no_key_is_made_while_its_owner_is_being_deactivated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deactivation tells the caches before it writes (up to seconds when a process must be
    waited for); a key made meanwhile would escape that."""
    from django.db import transaction

    from phoenix_apikeys import cache

    owner = UserFactory()
    telling, told = threading.Event(), threading.Event()
    real_retire_now = cache.retire_now

    def slow_retire_now(names: Any, **kwargs: Any) -> None:
        telling.set()
        told.wait(2)
        real_retire_now(names, **kwargs)

    monkeypatch.setattr(cache, "retire_now", slow_retire_now)

    def deactivate() -> None:
        try:
            with transaction.atomic():
                owner.is_active = False
                owner.save()
        finally:
            connections.close_all()

    def create() -> str:
        telling.wait(2)
        threading.Timer(0.5, told.set).start()
        try:
            UserKey.objects.create_key(user=UserFactory.build(pk=owner.pk), name="late")
            return "made"
        except ValidationError:
            return "refused"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        deactivating, creating = pool.submit(deactivate), pool.submit(create)
        deactivating.result()
        assert creating.result() == "refused"
    assert not UserKey.objects.filter(user=owner.pk).exists()


@pytest.mark.parametrize(
    ("path", "make"),
    [
        ("/v1/user/api_keys", lambda owner: UserKeyFactory(user=owner)),
        ("/v1/system/api_keys", lambda owner: SystemKeyFactory()),
        ("/v1/users/api_keys", lambda owner: UserKeyFactory(user=owner)),
    ],
)
def test_every_list_route_pages(path: str, make: Any) -> None:
    owner = SuperuserFactory()
    made = [make(owner).key_id for _ in range(5)]
    api = APIClient()
    api.force_login(owner)
    seen: list[str] = []
    cursor = ""
    for _ in range(3):
        body = api.get(path, {"limit": 2, "cursor": cursor}).json()
        seen += [key["id"] for key in body["data"]]
        cursor = body["next_cursor"]
    assert cursor is None
    assert seen == made[::-1]
    assert api.get(path, {"limit": 1001}).status_code == 422
    other_kind = UserKeyFactory(user=owner) if "system" in path else SystemKeyFactory()
    assert api.get(path, {"cursor": other_kind.key_id}).status_code == 422


def test_the_user_page_shows_a_bounded_number_of_keys_and_links_to_all() -> None:
    owner = UserFactory()
    for number in range(23):
        UserKeyFactory(user=owner, name=f"key-{number:02}")
    page = logged_in(SuperuserFactory()).get(f"/admin/testapp/user/{owner.pk}/change/")
    text = page.content.decode()
    shown = [number for number in range(23) if f"key-{number:02}" in text]
    assert shown == list(range(3, 23))  # the newest 20
    assert "the newest 20 of 23" in text
    assert f"{USER_LIST}?user__id__exact={owner.pk}" in text


# The leak route revokes live keys only ---------------------------------------------------------


def test_a_leak_report_leaves_an_expired_key_alone() -> None:
    key = UserKeyFactory()
    UserKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())
    revoke_leaked([key.plaintext], "192.0.2.9")
    assert stored(key) is not None
    assert not KeyEvent.objects.filter(action="leak_revoked").exists()


# Read replicas ---------------------------------------------------------------------------------


class ReplicaRouter:
    """Reads of this app go to "replica", an alias that does not exist: any read of a key or of
    the system user's binding through it fails the test."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "replica" if model._meta.app_label == "phoenix_apikeys" else None

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"


def test_with_reads_on_a_replica_keys_are_verified_and_changed_on_the_primary(
    settings: Any, admin_secret: str
) -> None:
    old, system = UserKeyFactory(), SystemKeyFactory()
    settings.DATABASE_ROUTERS = [f"{__name__}.ReplicaRouter"]
    new, plaintext = UserKey.objects.create_key(user=UserFactory(), name="fresh")
    assert verify_credential(plaintext)[1].pk == new.pk
    assert verify_credential(system.plaintext)[1].pk == system.pk
    assert verify_credential(admin_secret)[0].pk == system.user_id
    rotated, rotated_plaintext = UserKey.objects.rotate(old, grace_period=timedelta(0))
    assert verify_credential(rotated_plaintext)[1].pk == rotated.pk
    assert UserKey.objects.revoke(new)
    for revoked in (old.plaintext, plaintext):
        with pytest.raises(CredentialRejected):
            verify_credential(revoked)
