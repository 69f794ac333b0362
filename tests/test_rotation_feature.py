"""Key rotation with overlap, on every surface: REST (over real HTTP), the admin action and the
``rotate_api_key`` command. (``test_rotation.py`` is about rotating PHOENIX_SECRET.)

A rotation makes a new key like the old one (owner, name, description, scopes) and shortens the
old key's expiry to the end of a grace period (0: revoked at once), in one transaction that
retires the key cache as a revocation does.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from phoenix_apikeys import cache as key_cache_module
from phoenix_apikeys.ids import key_id
from phoenix_apikeys.models import AbstractAPIKey, SystemKey, UserKey
from phoenix_apikeys.signals import key_revoked, key_rotated

from . import test_api_permissions
from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory
from .test_admin import SYSTEM_LIST, USER_LIST, grant, logged_in, shown_key
from .test_api import KEY_FIELDS
from .test_api_permissions import Caller, World, bearer, expired_key, session

CREATED_FIELDS = KEY_FIELDS | {"key"}
DAY = timedelta(days=1)


def rotate_url(live_server: Any, key: AbstractAPIKey) -> str:
    kind = "user" if isinstance(key, UserKey) else "system"
    return f"{live_server.url}/v1/{kind}/api_keys/{key.key_id}/rotate"


def rotate(live_server: Any, caller: Caller, key: AbstractAPIKey, data: Any = None) -> Any:
    """POST the rotation; ``data`` None sends no body at all."""
    return requests.post(
        rotate_url(live_server, key),
        headers=caller.headers,
        cookies=caller.cookies,
        json=None if data is None else {"data": data},
        timeout=30,
    )


def whoami(live_server: Any, plaintext: str) -> int:
    response = requests.get(
        f"{live_server.url}/v1/user", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
    )
    return response.status_code


def stored(key: AbstractAPIKey) -> AbstractAPIKey | None:
    found: AbstractAPIKey | None = type(key)._default_manager.filter(pk=key.pk).first()
    return found


def when(text: str | None) -> datetime | None:
    return None if text is None else parse_datetime(text)


def near(value: datetime | None, expected: datetime, slack: float = 30) -> bool:
    return value is not None and abs((value - expected).total_seconds()) < slack


# REST: what a rotation makes ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_new_key_copies_the_old_one_and_answers_like_creation(live_server: Any) -> None:
    owner = SuperuserFactory()  # holds every permission, so its key may be scoped to one
    old = UserKeyFactory(
        user=owner,
        name="deploy bot",
        description="pushes releases",
        scopes=["read", "phoenix_apikeys.view_systemkey"],
        expires_at=timezone.now() + 10 * DAY,
    )
    response = rotate(live_server, session(owner), old)
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    data = response.json()["data"]
    assert set(data) == CREATED_FIELDS | {"replaces"}
    assert data["replaces"] == old.key_id
    new = UserKey.objects.exclude(pk=old.pk).get()
    assert data["id"] == new.key_id != old.key_id
    assert (new.user, new.name, new.description) == (owner, "deploy bot", "pushes releases")
    assert data["scopes"] == ["phoenix_apikeys.view_systemkey", "read"] == list(new.scope_list)
    # The old key's lifetime (10 days), counted from now; the old key ends with the default grace.
    assert near(when(data["expires_at"]), timezone.now() + 10 * DAY)
    assert near(stored(old).expires_at, timezone.now() + DAY)  # type: ignore[union-attr]
    assert whoami(live_server, data["key"]) == 200
    assert whoami(live_server, old.plaintext) == 200


@pytest.mark.django_db(transaction=True)
def test_a_system_key_rotation_records_the_caller_as_creator(live_server: Any) -> None:
    admin = SuperuserFactory()
    old = SystemKeyFactory(name="ci")
    response = rotate(live_server, session(admin), old, {"grace_period": 60})
    assert response.status_code == 201, response.text
    new = SystemKey.objects.exclude(pk=old.pk).get()
    assert (new.name, new.created_by, new.user) == ("ci", admin, old.user)
    assert response.json()["data"]["key"].startswith("phxs_")
    assert near(stored(old).expires_at, timezone.now() + timedelta(seconds=60))  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)
def test_the_old_key_works_until_its_grace_period_ends(live_server: Any) -> None:
    owner = UserFactory()
    old = UserKeyFactory(user=owner)
    data = rotate(live_server, session(owner), old, {"grace_period": 3600}).json()["data"]
    assert near(stored(old).expires_at, timezone.now() + timedelta(hours=1))  # type: ignore[union-attr]
    assert whoami(live_server, old.plaintext) == 200
    UserKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert whoami(live_server, old.plaintext) == 401
    assert whoami(live_server, data["key"]) == 200
    assert data["expires_at"] is None  # the old key never expired, so neither does the new one


@pytest.mark.django_db(transaction=True)
def test_the_grace_never_extends_the_old_keys_own_expiry(live_server: Any) -> None:
    owner = UserFactory()
    ends = timezone.now() + timedelta(minutes=5)
    old = UserKeyFactory(user=owner, expires_at=ends)
    assert rotate(live_server, session(owner), old, {"grace_period": 3600}).status_code == 201
    assert stored(old).expires_at == ends  # type: ignore[union-attr]


@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "key cache"])
@pytest.mark.django_db(transaction=True)
def test_no_grace_revokes_the_old_key_at_once(
    live_server: Any, settings: Any, cached: bool
) -> None:
    if cached:
        settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys"}
    owner = UserFactory()
    old = UserKeyFactory(user=owner)
    assert whoami(live_server, old.plaintext) == 200  # with the cache on, now cached
    revoked: list[int] = []
    receiver = lambda key, **kwargs: revoked.append(key.pk)  # noqa: E731
    key_revoked.connect(receiver, weak=False)
    try:
        response = rotate(live_server, session(owner), old, {"grace_period": 0})
    finally:
        key_revoked.disconnect(receiver)
    assert response.status_code == 201, response.text
    assert revoked == [old.pk]
    assert stored(old) is None
    assert whoami(live_server, old.plaintext) == 401
    assert whoami(live_server, response.json()["data"]["key"]) == 200


@pytest.mark.django_db(transaction=True)
def test_a_cached_old_key_stops_when_its_grace_ends_not_when_its_entry_times_out(
    live_server: Any, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys", "CACHE_TIMEOUT": 300}
    owner = UserFactory()
    old = UserKeyFactory(user=owner)  # never expires: the cached entry says so
    assert whoami(live_server, old.plaintext) == 200
    assert whoami(live_server, old.plaintext) == 200  # served from the cache
    started = time.monotonic()
    response = rotate(live_server, session(owner), old, {"grace_period": 3})
    assert response.status_code == 201, response.text
    assert whoami(live_server, old.plaintext) == 200  # still within its grace
    assert time.monotonic() - started < 3, "too slow to observe the grace period"
    time.sleep(max(0.0, 3.2 - (time.monotonic() - started)))
    assert whoami(live_server, old.plaintext) == 401
    assert whoami(live_server, response.json()["data"]["key"]) == 200


@pytest.mark.django_db(transaction=True)
def test_key_replaced_announces_both_keys_once(live_server: Any) -> None:
    owner = UserFactory()
    old = UserKeyFactory(user=owner)
    seen: list[tuple[Any, int | None, int | None]] = []
    receiver = lambda sender, old, new, **kwargs: seen.append((sender, old.pk, new.pk))  # noqa: E731
    key_rotated.connect(receiver, weak=False)
    try:
        response = rotate(live_server, session(owner), old)
    finally:
        key_rotated.disconnect(receiver)
    new = UserKey.objects.exclude(pk=old.pk).get()
    assert response.json()["data"]["id"] == new.key_id
    assert seen == [(UserKey, old.pk, new.pk)]


# REST: bodies and their errors ----------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}], ids=["no body", "empty object"])
@pytest.mark.django_db(transaction=True)
def test_no_body_rotates_with_the_defaults(live_server: Any, body: Any) -> None:
    owner = UserFactory()
    old = UserKeyFactory(user=owner)
    caller = session(owner)
    response = requests.post(
        rotate_url(live_server, old),
        headers=caller.headers,
        cookies=caller.cookies,
        json=body,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert near(stored(old).expires_at, timezone.now() + DAY)  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)
def test_the_grace_period_settings_are_the_default_and_the_limit(
    live_server: Any, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"ROTATION_GRACE_PERIOD": 600, "MAX_ROTATION_GRACE_PERIOD": 3600}
    owner = UserFactory()
    old = UserKeyFactory(user=owner)
    assert rotate(live_server, session(owner), old).status_code == 201
    assert near(stored(old).expires_at, timezone.now() + timedelta(minutes=10))  # type: ignore[union-attr]
    another = UserKeyFactory(user=owner)
    response = rotate(live_server, session(owner), another, {"grace_period": 3601})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "data.grace_period: Grace period must be at most 1 hour "
        "(MAX_ROTATION_GRACE_PERIOD)."
    }
    assert stored(another).expires_at is None  # type: ignore[union-attr]
    assert UserKey.objects.filter(user=owner).count() == 3  # old, its successor, another


@pytest.mark.parametrize(
    ("grace", "detail"),
    [
        (30 * 86400 + 1, "data.grace_period: Grace period must be at most 30 days"),
        (10**30, "data.grace_period: Grace period must be at most 30 days"),
        (-1, "data.grace_period: Ensure this value is greater than or equal to 0."),
        ("60", "data.grace_period: A valid integer is required."),
        (1.5, "data.grace_period: A valid integer is required."),
        (True, "data.grace_period: A valid integer is required."),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_bad_grace_period_is_422_and_changes_nothing(
    live_server: Any, grace: Any, detail: str
) -> None:
    owner = UserFactory()
    old = UserKeyFactory(user=owner)
    response = rotate(live_server, session(owner), old, {"grace_period": grace})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail), response.text
    assert stored(old).expires_at is None  # type: ignore[union-attr]
    assert UserKey.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_expired_key_cannot_be_rotated(live_server: Any) -> None:
    owner = UserFactory()
    old = expired_key(owner)
    response = rotate(live_server, session(owner), old)
    assert response.status_code == 422
    assert response.json() == {"detail": "id: The key has expired; create a new one."}
    assert UserKey.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_new_keys_expiry_follows_the_body(live_server: Any, settings: Any) -> None:
    owner = UserFactory()
    caller = session(owner)
    chosen = (timezone.now() + 3 * DAY).replace(microsecond=0)
    made = rotate(
        live_server, caller, UserKeyFactory(user=owner), {"expires_at": chosen.isoformat()}
    )
    assert when(made.json()["data"]["expires_at"]) == chosen
    never = rotate(
        live_server, caller, UserKeyFactory(user=owner, expires_at=chosen), {"expires_at": None}
    )
    assert never.json()["data"]["expires_at"] is None
    past = rotate(live_server, caller, UserKeyFactory(user=owner), {"expires_at": "2001-01-01"})
    assert past.status_code == 422
    assert past.json() == {"detail": "data.expires_at: Expiry must be in the future."}


@pytest.mark.django_db(transaction=True)
def test_an_inherited_lifetime_beyond_max_key_lifetime_is_cut_to_it(
    live_server: Any, settings: Any
) -> None:
    """A policy tightened since the old key was made: its replacement gets the most it allows."""
    owner = UserFactory()
    old = UserKeyFactory(user=owner, expires_at=timezone.now() + 60 * DAY)
    UserKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - 30 * DAY)  # 90 days
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": timedelta(days=80)}
    response = rotate(live_server, session(owner), old)
    assert response.status_code == 201
    new_expiry = parse_datetime(response.json()["data"]["expires_at"])
    assert near(new_expiry, timezone.now() + 80 * DAY)  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_key_cache_is_503_and_nothing_changes(
    live_server: Any, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "down"}
    key_cache_module._breakers.clear()
    owner = UserFactory()
    old, system = UserKeyFactory(user=owner), SystemKeyFactory()
    try:
        for key, caller in ((old, session(owner)), (system, session(SuperuserFactory()))):
            for grace in (0, 60):
                response = rotate(live_server, caller, key, {"grace_period": grace})
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "5"
                assert "cannot be reached" in response.json()["detail"]
    finally:
        key_cache_module._breakers.clear()
    assert [(k.pk, k.expires_at) for k in UserKey.objects.all()] == [(old.pk, None)]
    assert [(k.pk, k.expires_at) for k in SystemKey.objects.all()] == [(system.pk, None)]


# REST: who may rotate what --------------------------------------------------------------------

# fmt: off
MATRIX = [
    # route    caller                 target         expected
    ("user",   "anonymous",           "a_key",       401),
    ("user",   "user A",              "a_key",       201),
    ("user",   "user A",              "b_key",       404),
    ("user",   "user A",              "system_key",  404),  # a system key's id on the user route
    ("user",   "user A",              "garbage",     404),
    ("user",   "user B",              "a_key",       404),
    ("user",   "staff, no perms",     "a_key",       404),
    ("user",   "staff, key perms",    "a_key",       404),  # may see it; may not rotate it
    ("user",   "superuser",           "a_key",       404),
    ("user",   "superuser",           "super_key",   201),
    ("user",   "A's key",             "a_key",       403),
    ("user",   "A's scoped key",      "a_key",       403),
    ("user",   "admin's key",         "super_key",   403),
    ("user",   "system key",          "a_key",       403),
    ("user",   "admin secret",        "a_key",       403),
    ("user",   "invalid key",         "a_key",       401),
    ("user",   "expired key",         "a_key",       401),

    ("system", "anonymous",           "system_key",  401),
    ("system", "user A",              "system_key",  403),
    ("system", "staff, no perms",     "system_key",  403),
    ("system", "staff, view system",  "system_key",  403),
    ("system", "staff, key perms",    "system_key",  201),
    ("system", "superuser",           "system_key",  201),
    ("system", "superuser",           "a_key",       404),  # a user key's id on the system route
    ("system", "superuser",           "garbage",     404),
    ("system", "A's key",             "system_key",  403),
    ("system", "A's scoped key",      "system_key",  403),
    ("system", "admin's key",         "system_key",  403),
    ("system", "admin's scoped key",  "system_key",  403),
    ("system", "system key",          "system_key",  403),
    ("system", "admin secret",        "system_key",  201),
    ("system", "admin secret",        "garbage",     404),
    ("system", "invalid key",         "system_key",  401),
    ("system", "expired key",         "system_key",  401),
]
# fmt: on


# The callers and targets of test_api_permissions, and a few more.
world = test_api_permissions.world


@pytest.fixture
def callers_and_targets(world: World) -> tuple[dict[str, Caller], dict[str, Any]]:
    user_a = world.targets["a_key"].user
    # The superuser of "admin's key" (system keys' creators are superusers too, keyless).
    superuser = UserKey.objects.get(user__is_superuser=True).user
    callers = {
        **world.callers,
        "A's scoped key": bearer(UserKeyFactory(user=user_a, scopes=["read"]).plaintext),
        "admin's scoped key": bearer(
            UserKeyFactory(user=superuser, scopes=["phoenix_apikeys.add_systemkey"]).plaintext
        ),
    }
    targets = {**world.targets, "super_key": UserKeyFactory(user=superuser), "garbage": None}
    return callers, targets


@pytest.mark.parametrize(
    ("route", "caller", "target", "expected"),
    MATRIX,
    ids=[
        f"{caller} on the {route} route, {target} -> {code}"
        for route, caller, target, code in MATRIX
    ],
)
@pytest.mark.django_db(transaction=True)
def test_who_may_rotate_what(
    live_server: Any,
    callers_and_targets: tuple[dict[str, Caller], dict[str, Any]],
    route: str,
    caller: str,
    target: str,
    expected: int,
) -> None:
    callers, targets = callers_and_targets
    key = targets[target]
    key_text = "not-an-id%20%00.." if key is None else key_id(key.kind, key.pk)
    before = {(type(k), k.pk): k.expires_at for m in (UserKey, SystemKey) for k in m.objects.all()}
    response = requests.post(
        f"{live_server.url}/v1/{route}/api_keys/{key_text}/rotate",
        headers=callers[caller].headers,
        cookies=callers[caller].cookies,
        json={"data": {"grace_period": 60}},
        timeout=30,
    )
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    after = {(type(k), k.pk): k.expires_at for m in (UserKey, SystemKey) for k in m.objects.all()}
    if expected != 201:
        assert after == before
        return
    made = set(after) - set(before)
    assert len(made) == 1
    ((model, pk),) = made
    assert model is type(key)
    assert response.json()["data"]["id"] == key_id(key.kind, pk)
    assert response.json()["data"]["replaces"] == key.key_id
    assert near(after[(type(key), key.pk)], timezone.now() + timedelta(seconds=60))


# The admin action ------------------------------------------------------------------------------


def rotate_in_admin(client: Client, changelist: str, *keys: AbstractAPIKey) -> Any:
    return client.post(
        changelist, {"action": "rotate_selected", "_selected_action": [k.pk for k in keys]}
    )


def test_the_admin_action_shows_the_new_key_once_and_names_the_old(db: Any, settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"ROTATION_GRACE_PERIOD": timedelta(hours=2)}
    admin = SuperuserFactory()
    old = SystemKeyFactory(name="nightly export", description="to S3")
    response = rotate_in_admin(logged_in(admin), SYSTEM_LIST, old)
    assert response.status_code == 200
    page = response.content.decode()
    new = SystemKey.objects.exclude(pk=old.pk).get()
    assert (new.name, new.description, new.created_by) == ("nightly export", "to S3", admin)
    assert shown_key(response) != old.plaintext
    assert SystemKey.objects.find_by_plaintext(shown_key(response)) == new
    assert "will not be shown again" in page
    assert str(old) in page and old.key_id in page
    assert "2 hours" in page and "ROTATION_GRACE_PERIOD" in page
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert near(stored(old).expires_at, timezone.now() + timedelta(hours=2))  # type: ignore[union-attr]


def test_the_admin_action_says_when_the_old_key_was_revoked_at_once(db: Any, settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"ROTATION_GRACE_PERIOD": 0}
    staff = StaffFactory()
    old = UserKeyFactory(user=staff)
    response = rotate_in_admin(logged_in(staff), USER_LIST, old)
    assert "was revoked at once" in response.content.decode()
    assert stored(old) is None
    assert UserKey.objects.get().user == staff


def test_the_admin_action_rotates_one_key_at_a_time(db: Any) -> None:
    keys = [SystemKeyFactory(), SystemKeyFactory()]
    client = logged_in(SuperuserFactory())
    response = rotate_in_admin(client, SYSTEM_LIST, *keys)
    assert response.status_code == 302
    page = client.get(SYSTEM_LIST).content.decode()
    assert "Select exactly one key to rotate" in page
    assert SystemKey.objects.count() == 2
    assert [stored(key).expires_at for key in keys] == [None, None]  # type: ignore[union-attr]


def test_in_the_admin_only_ones_own_user_key_is_rotated(db: Any) -> None:
    inventory_admin = grant(StaffFactory(), "view_all_userkeys")
    theirs = UserKeyFactory()
    client = logged_in(inventory_admin)
    rotate_in_admin(client, USER_LIST, theirs)
    assert "only your own keys" in client.get(USER_LIST).content.decode()
    assert UserKey.objects.count() == 1
    assert stored(theirs).expires_at is None  # type: ignore[union-attr]


def test_the_admin_action_needs_the_add_permission(db: Any) -> None:
    viewer = grant(StaffFactory(), "view_systemkey", "delete_systemkey")
    old = SystemKeyFactory()
    client = logged_in(viewer)
    assert "rotate_selected" not in client.get(SYSTEM_LIST).content.decode()
    rotate_in_admin(client, SYSTEM_LIST, old)
    assert SystemKey.objects.count() == 1
    adder = grant(StaffFactory(), "view_systemkey", "add_systemkey")
    assert "Rotate selected key" in logged_in(adder).get(SYSTEM_LIST).content.decode()


def test_a_request_made_with_an_api_key_cannot_rotate_in_the_admin(db: Any) -> None:
    superuser = SuperuserFactory()
    own = UserKeyFactory(user=superuser)
    system = SystemKeyFactory()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {own.plaintext}")
    for changelist, key in ((SYSTEM_LIST, system), (USER_LIST, own)):
        response = rotate_in_admin(client, changelist, key)
        assert not re.search(r"phx[su]_[0-9A-Za-z]{38}", response.content.decode())
    assert (UserKey.objects.count(), SystemKey.objects.count()) == (1, 1)
    assert (stored(own).expires_at, stored(system).expires_at) == (None, None)  # type: ignore[union-attr]


def test_the_admin_action_is_refused_while_the_key_cache_cannot_be_told(
    db: Any, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "down"}
    key_cache_module._breakers.clear()
    old = SystemKeyFactory()
    client = logged_in(SuperuserFactory())
    try:
        rotate_in_admin(client, SYSTEM_LIST, old)
    finally:
        key_cache_module._breakers.clear()
    assert "cannot be reached" in client.get(SYSTEM_LIST).content.decode()
    assert SystemKey.objects.count() == 1


# The command -----------------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_the_new_key_alone_on_stdout(db: Any) -> None:
    old = SystemKeyFactory(name="ci", expires_at=timezone.now() + 10 * DAY)
    out, err = run(old.key_id, "--grace-period", "1h")
    new = SystemKey.objects.exclude(pk=old.pk).get()
    assert out.strip() == out.rstrip("\n")  # one line: the key
    assert SystemKey.objects.find_by_plaintext(out.strip()) == new
    assert new.name == "ci"
    assert near(new.expires_at, timezone.now() + 10 * DAY)
    ends = stored(old).expires_at  # type: ignore[union-attr]
    assert near(ends, timezone.now() + timedelta(hours=1))
    assert ends is not None and f"keeps working until {ends.isoformat()}" in err
    assert "phxs_" not in err.replace(old.prefixed_hint, "").replace(new.prefixed_hint, "")


def test_the_command_with_no_grace_revokes_and_takes_an_expiry(db: Any) -> None:
    owner = UserFactory()
    old = UserKeyFactory(user=owner, scopes=["read"])
    out, err = run(old.key_id, "--grace-period", "0", "--expires-in", "7d")
    new = UserKey.objects.get()
    assert (new.user, new.scopes, new.pk != old.pk) == (owner, "read", True)
    assert near(new.expires_at, timezone.now() + 7 * DAY)
    assert UserKey.objects.find_by_plaintext(out.strip()) == new
    assert "Revoked" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--grace-period", "soon"), "--grace-period: expected a positive number and a unit"),
        (("--grace-period", "31d"), "--grace-period: Grace period must be at most 30 days"),
        (("--expires-in", "x"), "--expires-in: expected a positive number and a unit"),
        (("--expires-at", "2001-01-01T00:00:00Z"), "--expires-at: Expiry must be in the future."),
    ],
)
def test_the_command_names_the_option_in_its_errors(
    db: Any, args: tuple[str, ...], message: str
) -> None:
    old = SystemKeyFactory()
    with pytest.raises(CommandError, match=re.escape(message)):
        run(old.key_id, *args)
    assert SystemKey.objects.count() == 1
    assert stored(old).expires_at is None  # type: ignore[union-attr]


def test_the_command_refuses_an_expired_key_an_unknown_id_and_a_plaintext(db: Any) -> None:
    expired = expired_key(UserFactory())
    with pytest.raises(CommandError, match=re.escape("ID: The key has expired")):
        run(expired.key_id)
    with pytest.raises(CommandError, match="No API key with id"):
        run(key_id(expired.kind, expired.pk + 100))
    with pytest.raises(CommandError, match="not an id") as raised:
        run(expired.plaintext)
    assert expired.plaintext not in str(raised.value)
    assert UserKey.objects.count() == 1


# The settings ----------------------------------------------------------------------------------


def check_ids(settings: Any, **values: Any) -> set[str]:
    settings.PHOENIX_APIKEYS = values
    return {message.id for message in run_checks() if message.id.startswith("phoenix_apikeys.E")}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, set()),
        ({"ROTATION_GRACE_PERIOD": 0, "MAX_ROTATION_GRACE_PERIOD": 0}, set()),
        ({"ROTATION_GRACE_PERIOD": timedelta(days=30)}, set()),
        ({"ROTATION_GRACE_PERIOD": timedelta(days=31)}, {"phoenix_apikeys.E029"}),
        ({"MAX_ROTATION_GRACE_PERIOD": 3600}, {"phoenix_apikeys.E029"}),
        ({"ROTATION_GRACE_PERIOD": "1h"}, {"phoenix_apikeys.E026"}),
        ({"MAX_ROTATION_GRACE_PERIOD": -1}, {"phoenix_apikeys.E026"}),
        ({"EVENT_RETENTION": timedelta(days=29)}, {"phoenix_apikeys.E030"}),
        (
            {"EVENT_RETENTION": 60, "MAX_ROTATION_GRACE_PERIOD": 60, "ROTATION_GRACE_PERIOD": 0},
            set(),
        ),
    ],
)
def test_the_grace_period_settings_are_checked(
    settings: Any, values: dict[str, Any], expected: set[str]
) -> None:
    found = check_ids(settings, **values)
    assert (
        found & {"phoenix_apikeys.E026", "phoenix_apikeys.E029", "phoenix_apikeys.E030"} == expected
    )


# Concurrency -----------------------------------------------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres… (concurrent connections)",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_without_grace_replace_the_key_once(admin_secret: str) -> None:
    old = SystemKeyFactory()
    url = f"/v1/system/api_keys/{old.key_id}/rotate"
    revoked: list[int] = []
    receiver = lambda key, **kwargs: revoked.append(key.pk)  # noqa: E731
    key_revoked.connect(receiver, weak=False)
    start = threading.Barrier(8)

    def rotate_now() -> int:
        start.wait()
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
            return client.post(url, {"data": {"grace_period": 0}}, format="json").status_code
        finally:
            connections.close_all()

    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(lambda _: rotate_now(), range(8)))
    finally:
        key_revoked.disconnect(receiver)
    assert statuses == [201] + [404] * 7
    assert revoked == [old.pk]
    assert SystemKey.objects.exclude(pk=old.pk).count() == 1
    assert not SystemKey.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
def test_a_key_already_replaced_is_not_rotated_again() -> None:
    """A client retrying a rotation would get a key that dies with the first one's grace."""
    from django.core.exceptions import ValidationError as ModelValidationError

    key = UserKeyFactory()
    UserKey.objects.rotate(key, grace_period=timedelta(hours=1))
    with pytest.raises(ModelValidationError, match="already replaced"):
        UserKey.objects.rotate(UserKey.objects.get(pk=key.pk), grace_period=timedelta(hours=1))
    assert UserKey.objects.count() == 2


@pytest.mark.django_db
def test_a_key_made_at_the_maximum_rotates_within_it(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {
        "MAX_KEY_LIFETIME": {"user": 86400},
        "DEFAULT_KEY_LIFETIME": {"user": 86400},
    }
    for _ in range(30):
        key, _plaintext = UserKey.objects.create_key(user=UserFactory(), name="edge")
        assert key.expires_at - key.created_at == timedelta(days=1)
        new, _ = UserKey.objects.rotate(key, grace_period=timedelta(0))
        assert new.expires_at - new.created_at <= timedelta(days=1)
