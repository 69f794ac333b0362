"""The audit trail (models.KeyEvent): one event per change, by whom and from where, written in
the change's own transaction, never a secret; append-only; pruned by EVENT_RETENTION."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys import audit, coherence, verification
from phoenix_apikeys import cache as key_cache_module
from phoenix_apikeys.models import AbstractAPIKey, KeyEvent, SystemKey, UserKey
from phoenix_apikeys.signals import key_event_recorded

from .factories import SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory
from .test_admin import SYSTEM_ADD, SYSTEM_LIST, USER_LIST, add_key, logged_in, shown_key
from .testapp.caches import FlakyCache

pytestmark = pytest.mark.django_db

EVENTS = "/admin/phoenix_apikeys/keyevent/"


def events(**filters: Any) -> list[KeyEvent]:
    return list(KeyEvent.objects.filter(**filters).order_by("id"))


def assert_holds_no_secret(event: KeyEvent, *secrets: str) -> None:
    """No column of the stored row holds a plaintext or a digest, whole or in part."""
    row = KeyEvent.objects.filter(pk=event.pk).values().get()
    text = repr(row)
    for secret in secrets:
        assert secret not in text
        assert secret[-12:] not in text


def expire(key: AbstractAPIKey) -> None:
    type(key)._default_manager.filter(pk=key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def run(*args: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# Each action, once, by whom ------------------------------------------------------------------


def test_created_names_the_actor_the_source_and_the_key_never_its_secret() -> None:
    actor = UserFactory(username="ada")
    with audit.acting(actor=actor, source="203.0.113.7"):
        key, plaintext = UserKey.objects.create_key(name="deploy", user=actor)
    [event] = events()
    assert (event.action, event.kind, event.key_id, event.key_name) == (
        "created",
        "user",
        key.key_id,
        "deploy",
    )
    assert (event.actor, event.actor_label, event.source) == (actor, "ada", "203.0.113.7")
    assert_holds_no_secret(event, plaintext, key.digest)


def test_without_an_actor_the_label_says_anonymous() -> None:
    key = SystemKeyFactory()
    [event] = events()
    assert (event.kind, event.key_id, event.actor, event.actor_label, event.source) == (
        "system",
        key.key_id,
        None,
        "anonymous",
        "",
    )


def test_commands_record_created_rotated_revoked_as_command() -> None:
    plaintext = run("create_system_key", "--name", "ci").strip()
    key = SystemKey.objects.get()
    new_plaintext = run("rotate_api_key", key.key_id, "--grace-period", "1h").strip()
    new = SystemKey.objects.exclude(pk=key.pk).get()
    run("revoke_api_key", new.key_id)
    recorded = [(e.action, e.key_id, e.actor_label, e.actor_id) for e in events()]
    assert recorded == [
        ("created", key.key_id, "command", None),
        ("created", new.key_id, "command", None),
        ("rotated", key.key_id, "command", None),
        ("revoked", new.key_id, "command", None),
    ]
    for event in events():
        assert_holds_no_secret(event, plaintext, new_plaintext, key.digest, new.digest)


def test_a_rotation_without_grace_records_the_revocation_of_the_old_key() -> None:
    old = UserKeyFactory()
    old_id, actor = old.key_id, old.user
    with audit.acting(actor=actor):
        new, _ = UserKey.objects.rotate(old, grace_period=timedelta(0))
    assert not UserKey.objects.filter(pk=old.pk).exists()  # deleted: a revocation
    recorded = [(e.action, e.key_id, e.actor_label) for e in events(actor=actor)]
    username = actor.get_username()
    assert recorded == [
        ("created", new.key_id, username),
        ("revoked", old_id, username),
        ("rotated", old_id, username),
    ]


def test_prune_records_expired_pruned_not_revoked() -> None:
    expired, kept = UserKeyFactory(name="old"), UserKeyFactory()
    expired_id = expired.key_id
    expire(expired)
    run("prune_api_keys")
    pruned = events(key_id=expired_id)
    assert [(e.action, e.actor_label, e.key_name) for e in pruned] == [
        ("created", "anonymous", "old"),
        ("expired_pruned", "command", "old"),
    ]
    assert not events(action="revoked")
    assert UserKey.objects.filter(pk=kept.pk).exists()


def test_a_leak_revocation_is_recorded_as_such_once() -> None:
    key = UserKeyFactory()
    key_id = key.key_id
    UserKey.objects.revoke(key, reason="leak_revoked", source="198.51.100.4")
    [event] = events(action__in=["revoked", "leak_revoked"])
    assert (event.action, event.key_id, event.actor_label, event.source) == (
        "leak_revoked",
        key_id,
        "anonymous",
        "198.51.100.4",
    )


def test_record_takes_explicit_who_and_where() -> None:
    key = SystemKeyFactory()
    event = KeyEvent.objects.record("leak_revoked", key, source="192.0.2.1")
    assert (event.action, event.key_id, event.source, event.actor_label) == (
        "leak_revoked",
        key.key_id,
        "192.0.2.1",
        "anonymous",
    )
    admin = SuperuserFactory()
    with audit.acting(label="command"):
        by_admin = KeyEvent.objects.record("revoked", key, actor=admin)
    assert (by_admin.actor, by_admin.actor_label) == (admin, admin.get_username())


def test_the_label_outlives_the_actor() -> None:
    actor = UserFactory(username="gone")
    with audit.acting(actor=actor):
        SystemKeyFactory()
    actor.delete()
    [event] = events()
    assert (event.actor, event.actor_label) == (None, "gone")


# The admin ----------------------------------------------------------------------------------


def test_the_admin_records_add_rotate_and_delete_as_the_logged_in_user() -> None:
    admin = SuperuserFactory()
    client = logged_in(admin)
    plaintext = shown_key(add_key(client, SYSTEM_ADD, name="from the admin"))
    key = SystemKey.objects.get()
    client.post(SYSTEM_LIST, {"action": "rotate_selected", "_selected_action": [key.pk]})
    new = SystemKey.objects.exclude(pk=key.pk).get()
    client.post(f"{SYSTEM_LIST}{new.pk}/delete/", {"post": "yes"})
    recorded = [(e.action, e.key_id, e.actor, e.actor_label, e.source) for e in events()]
    name = admin.get_username()
    assert recorded == [
        ("created", key.key_id, admin, name, "127.0.0.1"),
        ("created", new.key_id, admin, name, "127.0.0.1"),
        ("rotated", key.key_id, admin, name, "127.0.0.1"),
        ("revoked", new.key_id, admin, name, "127.0.0.1"),
    ]
    for event in events():
        assert_holds_no_secret(event, plaintext, key.digest)


def test_a_bulk_delete_records_each_key() -> None:
    keys = [UserKeyFactory(), UserKeyFactory()]
    admin = SuperuserFactory()
    selected = {"action": "delete_selected", "_selected_action": [k.pk for k in keys]}
    logged_in(admin).post(USER_LIST, {**selected, "post": "yes"})
    revoked = events(action="revoked")
    assert sorted(e.key_id for e in revoked) == sorted(k.key_id for k in keys)
    assert {e.actor for e in revoked} == {admin}


def test_the_event_admin_lists_filters_and_searches() -> None:
    key = SystemKeyFactory(name="nightly")
    key_id = key.key_id
    key.delete()
    client = logged_in(SuperuserFactory())
    year = timezone.now().year
    for query in ("", "?action__exact=revoked", "?kind__exact=system", f"?at__year={year}"):
        response = client.get(EVENTS + query)
        assert response.status_code == 200, query
        assert key_id in response.content.decode()
    assert key_id in client.get(EVENTS, {"q": key_id}).content.decode()
    assert key_id not in client.get(EVENTS, {"q": "nobody"}).content.decode()
    other = client.get(EVENTS, {"action__exact": "created", "kind__exact": "user"})
    assert key_id not in other.content.decode()


def test_the_event_admin_is_read_only() -> None:
    key = SystemKeyFactory()
    event = KeyEvent.objects.get()
    client = logged_in(SuperuserFactory())
    assert client.get(EVENTS + "add/").status_code == 403
    assert client.post(EVENTS + "add/", {"action": "created"}).status_code == 403
    assert client.get(f"{EVENTS}{event.pk}/change/").status_code == 200  # a read-only view
    client.post(f"{EVENTS}{event.pk}/change/", {"key_id": "forged", "actor_label": "x"})
    assert client.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    client.post(EVENTS, bulk)
    event.refresh_from_db()
    assert (event.key_id, event.actor_label) == (key.key_id, "anonymous")
    assert "delete_selected" not in client.get(EVENTS).content.decode()


# The same transaction -----------------------------------------------------------------------


def test_a_revocation_the_cache_refused_leaves_no_event(flaky: type[FlakyCache]) -> None:
    key = UserKeyFactory()
    flaky.broken = True
    with pytest.raises(key_cache_module.CacheUnreachable), transaction.atomic():
        UserKey.objects.get(pk=key.pk).delete()
    assert not events(action="revoked")
    assert UserKey.objects.filter(pk=key.pk).exists()


def test_a_rotation_the_cache_refused_leaves_no_event(flaky: type[FlakyCache]) -> None:
    key = UserKeyFactory()
    flaky.broken = True
    with pytest.raises(key_cache_module.CacheUnreachable):
        UserKey.objects.rotate(key, grace_period=timedelta(hours=1))
    assert [e.action for e in events()] == ["created"]  # the key's own creation
    assert UserKey.objects.count() == 1


def test_a_creation_rolled_back_leaves_no_event() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        SystemKeyFactory()
        assert len(events()) == 1
        raise RuntimeError
    assert not events()


# Append-only --------------------------------------------------------------------------------


def test_an_event_is_never_changed_nor_deleted_one_by_one() -> None:
    SystemKeyFactory()
    event = KeyEvent.objects.get()
    event.actor_label = "someone else"
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    with pytest.raises(TypeError, match="append-only"):
        KeyEvent(action="created", kind="user", actor_label="x").save(update_fields=["action"])
    assert KeyEvent.objects.get().actor_label == "anonymous"


def backdate(events: Any, when: Any) -> None:
    """As time would: the base QuerySet.update, which KeyEvent's own queryset refuses."""
    from django.db.models import QuerySet

    QuerySet.update(events, at=when)


def test_prune_key_events_deletes_only_what_retention_lets_go(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"EVENT_RETENTION": timedelta(days=30)}
    keys = [SystemKeyFactory() for _ in range(3)]
    old = KeyEvent.objects.filter(key_id__in=[keys[0].key_id, keys[1].key_id])
    backdate(old, timezone.now() - timedelta(days=31))
    assert "Would prune 2 key events" in run("prune_key_events", "--dry-run")
    assert KeyEvent.objects.count() == 3
    assert "Pruned 2 key events" in run("prune_key_events")
    assert [e.key_id for e in events()] == [keys[2].key_id]
    settings.PHOENIX_APIKEYS = {"EVENT_RETENTION": 60}  # seconds
    backdate(KeyEvent.objects.all(), timezone.now() - timedelta(seconds=61))
    assert "Pruned 1 key event " in run("prune_key_events")
    assert not KeyEvent.objects.exists()


# The signal ---------------------------------------------------------------------------------


def test_key_event_recorded_is_sent_on_commit(django_capture_on_commit_callbacks: Any) -> None:
    sent: list[KeyEvent] = []
    receiver = lambda sender, event, **kwargs: sent.append(event)  # noqa: E731
    key_event_recorded.connect(receiver, sender=KeyEvent, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            key = SystemKeyFactory()
            assert sent == []  # not before the commit
        assert len(callbacks) >= 1
        assert [(e.action, e.key_id) for e in sent] == [("created", key.key_id)]
        with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
            key.delete()
        assert len(sent) == 1  # captured, never committed here
    finally:
        key_event_recorded.disconnect(receiver, sender=KeyEvent)


# The admin secret ---------------------------------------------------------------------------


def test_admin_secret_use_is_recorded_at_most_once_per_interval(
    admin_secret: str, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"LAST_USED_INTERVAL": timedelta(minutes=5)}
    start = 1000.0
    with mock.patch("phoenix_apikeys.verification.time.monotonic", return_value=start):
        for _ in range(3):
            verification.verify_credential(admin_secret, "192.0.2.9")
    [event] = events()
    assert (event.action, event.kind, event.key_id, event.actor, event.actor_label) == (
        "admin_secret_used",
        "admin_secret",
        "",
        None,
        "admin secret",
    )
    assert event.source == "192.0.2.9"
    assert_holds_no_secret(event, admin_secret)
    with mock.patch("phoenix_apikeys.verification.time.monotonic", return_value=start + 299):
        verification.verify_credential(admin_secret, "192.0.2.9")
    assert len(events()) == 1
    with mock.patch("phoenix_apikeys.verification.time.monotonic", return_value=start + 300):
        verification.verify_credential(admin_secret, lambda: "192.0.2.10")
    assert [e.source for e in events()] == ["192.0.2.9", "192.0.2.10"]


def test_the_warm_admin_secret_path_still_costs_zero_queries(
    api_client: APIClient, key_cache: str, admin_secret: str
) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {admin_secret}"}
    assert api_client.get("/whoami/", **headers).status_code == 200  # cold: records the use
    # With Redis, a drop broadcast while the system user was first read (its creation) can reach
    # this process's memory after the read; the next request reads and keeps it again.
    memory = coherence.memory(key_cache_module._memory_url(key_cache))
    deadline = time.monotonic() + 5
    while memory is not None and memory.recall(key_cache_module.SYSTEM_USER) is None:
        assert time.monotonic() < deadline, "the system user never stayed in the key cache"
        assert api_client.get("/whoami/", **headers).status_code == 200
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert api_client.get("/whoami/", **headers).status_code == 200
        assert len(queries) == 0
    [event] = events()
    assert (event.action, event.source) == ("admin_secret_used", "127.0.0.1")


def test_a_failed_admin_secret_is_not_recorded(admin_secret: str) -> None:
    with pytest.raises(verification.CredentialRejected):
        verification.verify_credential(admin_secret + "x")
    assert not events()


# Saying who acts ----------------------------------------------------------------------------


def test_acting_blocks_nest_and_inherit_what_they_do_not_set() -> None:
    user = UserFactory(username="grace")
    assert audit.current().actor_label == "anonymous"
    with audit.acting(label="command", source="10.0.0.1"):
        with audit.acting(source="10.0.0.2"):
            inner = audit.current()
            assert (inner.actor_label, inner.source) == ("command", "10.0.0.2")
        with audit.acting(actor=user):
            assert (audit.current().actor_label, audit.current().source) == ("grace", "10.0.0.1")
        assert audit.current().source == "10.0.0.1"
    assert audit.current() is audit.NOBODY


def test_acting_for_a_request_names_its_user_or_the_admin_secret() -> None:
    from django.test import RequestFactory

    from phoenix_apikeys.http import acting_for
    from phoenix_apikeys.verification import ADMIN_SECRET

    user = UserFactory(username="lin")
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.44")
    request.user = user
    with acting_for(request):
        SystemKeyFactory()
    request.auth = ADMIN_SECRET  # type: ignore[attr-defined]
    with acting_for(request):
        SystemKeyFactory()
    recorded = [(e.actor, e.actor_label, e.source) for e in events()]
    assert recorded == [(user, "lin", "192.0.2.44"), (user, "admin secret", "192.0.2.44")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["one", "bulk"])
def test_an_admin_deleting_their_own_account_commits_with_their_name_kept(how: str) -> None:
    admin = SuperuserFactory(username="leaving")
    key = UserKeyFactory(user=admin)
    key_id = key.key_id
    client = logged_in(admin)
    if how == "one":
        client.post(f"/admin/testapp/user/{admin.pk}/delete/", {"post": "yes"})
    else:
        bulk = {"action": "delete_selected", "_selected_action": [admin.pk], "post": "yes"}
        client.post("/admin/testapp/user/", bulk)
    assert not type(admin)._default_manager.filter(pk=admin.pk).exists()
    [event] = events(action="revoked")
    assert (event.key_id, event.actor, event.actor_label) == (key_id, None, "leaving")


def test_an_admin_secret_use_the_database_cannot_record_still_authenticates(
    admin_secret: str,
) -> None:
    from django.db import DatabaseError

    with mock.patch.object(type(KeyEvent.objects), "record", side_effect=DatabaseError("gone")):
        _user, auth = verification.verify_credential(admin_secret)
    assert auth is verification.ADMIN_SECRET
    assert not events()


def test_the_rest_api_records_who_created_rotated_and_revoked(admin_secret: str) -> None:
    person = UserFactory()
    client = APIClient()
    client.force_login(person)
    made = client.post("/v1/user/api_keys", {"data": {"name": "nb"}}, format="json")
    key_id = made.json()["data"]["id"]
    rotated = client.post(f"/v1/user/api_keys/{key_id}/rotate", {}, format="json")
    new_id = rotated.json()["data"]["id"]
    assert client.delete(f"/v1/user/api_keys/{new_id}").status_code == 204
    by_action = {event.action: event for event in events()}
    for action in ("created", "rotated", "revoked"):
        assert by_action[action].actor_label == person.username, action
        assert by_action[action].source == "127.0.0.1", action
    assert by_action["revoked"].key_id == new_id
    machine = APIClient()
    machine.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
    assert (
        machine.post("/v1/system/api_keys", {"data": {"name": "ci"}}, format="json").status_code
        == 201
    )
    assert events(action="created", kind="system")[0].actor_label == audit.ADMIN_SECRET


def test_a_leak_report_over_rest_is_recorded_as_leak_revoked() -> None:
    key = UserKeyFactory()
    response = APIClient().post(
        "/v1/api_keys/revoke", {"data": {"keys": [key.plaintext]}}, format="json"
    )
    assert response.status_code == 202
    [event] = events(action="leak_revoked")
    assert event.key_id == key.key_id and event.source == "127.0.0.1"
    assert events(action="revoked") == []
    assert_holds_no_secret(event, key.plaintext, key.digest)


def test_the_orm_cannot_rewrite_or_delete_events_by_ordinary_means() -> None:
    from django.db import IntegrityError

    UserKeyFactory()
    [event] = events(action="created")
    with pytest.raises(IntegrityError), transaction.atomic():
        KeyEvent(pk=event.pk, action="created", kind="user", actor_label="forged").save()
    with pytest.raises(TypeError):
        KeyEvent.objects.filter(pk=event.pk).update(actor_label="forged")
    with pytest.raises(TypeError):
        KeyEvent.objects.filter(pk=event.pk).delete()
    assert KeyEvent.objects.get(pk=event.pk).actor_label == event.actor_label
    assert KeyEvent.objects.prune_older_than(timezone.now() + timedelta(seconds=1)) == 1
