"""Scoped keys over real HTTP: a key that can do less than its owner, enforced by Django's own
permissions, through DRF views, the REST API and plain views behind the middleware alike."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from phoenix_apikeys.models import SystemKey, UserKey, system_user
from phoenix_apikeys.scopes import ScopedUser, method_refusal, problems

from .factories import SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory
from .test_api_permissions import session

pytestmark = pytest.mark.django_db(transaction=True)

VIEW, ADD = "auth.view_group", "auth.add_group"
READ_ONLY = 'This key is read-only (scope "read"): only GET, HEAD and OPTIONS.'


def grant(user: Any, *perms: str) -> Any:
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def revoke(user: Any, perm: str) -> None:
    user.user_permissions.remove(Permission.objects.get(codename=perm.split(".")[1]))


def call(server: Any, method: str, path: str, key: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return requests.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(params=["database", "key cache"])
def cache_mode(request: pytest.FixtureRequest, settings: Any) -> str:
    """Every rule holds whether the key comes from the database or from the key cache."""
    if request.param == "key cache":
        settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys"}
    return str(request.param)


@pytest.fixture
def owner() -> Any:
    return grant(UserFactory(), VIEW, ADD)


# read: safe methods only -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/groups/", "/plain/groups/", "/v1/user/api_keys"])
def test_a_read_key_is_refused_every_unsafe_method(
    live_server: Any, cache_mode: str, owner: Any, path: str
) -> None:
    key = UserKeyFactory(user=owner, scopes=["read", ADD])
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = call(live_server, method, path, key.plaintext, json={"name": "x"})
        assert response.status_code == 403, (method, response.text)
        assert response.json()["detail"] == READ_ONLY
        assert "WWW-Authenticate" not in response.headers
    assert not Group.objects.exists()


@pytest.mark.parametrize("path", ["/whoami/", "/plain/", "/groups/", "/v1/user"])
def test_a_read_key_may_get_head_and_options(
    live_server: Any, cache_mode: str, owner: Any, path: str
) -> None:
    key = UserKeyFactory(user=owner, scopes=["read", VIEW])
    assert call(live_server, "GET", path, key.plaintext).status_code == 200
    assert call(live_server, "HEAD", path, key.plaintext).status_code == 200
    assert call(live_server, "OPTIONS", path, key.plaintext).status_code in (200, 405)


def test_a_read_key_is_a_good_key_not_a_failed_attempt(
    live_server: Any, owner: Any, settings: Any
) -> None:
    """403, never 401, and never counted towards the address's failure limit."""
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 2, "THROTTLE_CACHE_ALIAS": "default"}
    key = UserKeyFactory(user=owner, scopes=["read"])
    statuses = [call(live_server, "POST", "/groups/", key.plaintext).status_code for _ in "abcd"]
    assert statuses == [403] * 4


# Django permissions: the key's permissions are its scopes that the owner has -----------------


def test_a_permission_scope_narrows_drf_model_permissions(
    live_server: Any, cache_mode: str, owner: Any
) -> None:
    scoped = UserKeyFactory(user=owner, scopes=[VIEW])
    unscoped = UserKeyFactory(user=owner)
    assert call(live_server, "GET", "/groups/", scoped.plaintext).status_code == 200
    refused = call(live_server, "POST", "/groups/", scoped.plaintext, json={"name": "a"})
    assert refused.status_code == 403
    allowed = call(live_server, "POST", "/groups/", unscoped.plaintext, json={"name": "b"})
    assert allowed.status_code == 201
    assert list(Group.objects.values_list("name", flat=True)) == ["b"]


def test_a_permission_scope_narrows_a_plain_view_behind_the_middleware(
    live_server: Any, cache_mode: str, owner: Any
) -> None:
    scoped = UserKeyFactory(user=owner, scopes=[VIEW])
    unscoped = UserKeyFactory(user=owner)
    seen = call(live_server, "GET", "/plain/permissions/", scoped.plaintext).json()
    assert seen == {
        "is_superuser": False,
        "is_staff": False,
        "permissions": [VIEW],
        "can_add_group": False,
    }
    denied = call(live_server, "POST", "/plain/groups/", scoped.plaintext, data={"name": "a"})
    assert denied.status_code == 403
    made = call(live_server, "POST", "/plain/groups/", unscoped.plaintext, data={"name": "b"})
    assert made.status_code == 201
    assert list(Group.objects.values_list("name", flat=True)) == ["b"]


def test_a_superusers_scoped_key_is_no_superuser(live_server: Any, cache_mode: str) -> None:
    boss = SuperuserFactory()
    key = UserKeyFactory(user=boss, scopes=[VIEW])
    seen = call(live_server, "GET", "/plain/permissions/", key.plaintext).json()
    assert seen == {
        "is_superuser": False,
        "is_staff": False,
        "permissions": [VIEW],
        "can_add_group": False,
    }
    assert (
        call(live_server, "POST", "/groups/", key.plaintext, json={"name": "a"}).status_code == 403
    )
    assert not Group.objects.exists()


def test_a_key_scoped_only_to_read_has_no_permission(live_server: Any, owner: Any) -> None:
    key = UserKeyFactory(user=owner, scopes=["read"])
    seen = call(live_server, "GET", "/plain/permissions/", key.plaintext).json()
    assert seen["permissions"] == []
    assert call(live_server, "GET", "/groups/", key.plaintext).status_code == 403  # view_group


def test_the_owner_losing_a_permission_narrows_the_key_at_once(
    live_server: Any, cache_mode: str, owner: Any
) -> None:
    key = UserKeyFactory(user=owner, scopes=[VIEW, ADD])
    assert call(live_server, "GET", "/groups/", key.plaintext).status_code == 200  # cached now
    revoke(owner, VIEW)
    assert call(live_server, "GET", "/groups/", key.plaintext).status_code == 403
    seen = call(live_server, "GET", "/plain/permissions/", key.plaintext).json()
    assert seen["permissions"] == [ADD]


def test_a_system_keys_scopes_narrow_the_system_user(live_server: Any, cache_mode: str) -> None:
    grant(system_user(), VIEW, ADD)
    scoped = SystemKeyFactory(scopes=[VIEW])
    unscoped = SystemKeyFactory()
    assert call(live_server, "GET", "/groups/", scoped.plaintext).status_code == 200
    refused = call(live_server, "POST", "/groups/", scoped.plaintext, json={"name": "a"})
    assert refused.status_code == 403
    allowed = call(live_server, "POST", "/groups/", unscoped.plaintext, json={"name": "b"})
    assert allowed.status_code == 201
    read_only = SystemKeyFactory(scopes=["read", ADD])
    assert call(live_server, "POST", "/plain/groups/", read_only.plaintext).status_code == 403


# Key management under scopes -------------------------------------------------------------------


def test_a_scoped_key_never_manages_keys(live_server: Any, owner: Any) -> None:
    scoped = UserKeyFactory(user=owner, scopes=[VIEW])
    target = UserKeyFactory(user=owner)
    response = call(live_server, "DELETE", f"/v1/user/api_keys/{target.key_id}", scoped.plaintext)
    assert response.status_code == 403
    assert response.json()["detail"] == "A scoped key cannot manage API keys."
    assert UserKey.objects.filter(pk=target.pk).exists()
    own = call(live_server, "DELETE", f"/v1/user/api_keys/{scoped.key_id}", scoped.plaintext)
    assert own.status_code == 403
    created = call(live_server, "POST", "/v1/user/api_keys", scoped.plaintext, json={"data": {}})
    assert created.status_code == 403
    unscoped = UserKeyFactory(user=owner)
    gone = call(live_server, "DELETE", f"/v1/user/api_keys/{target.key_id}", unscoped.plaintext)
    assert gone.status_code == 204


def test_a_scoped_key_of_a_key_administrator_cannot_delete_system_keys(live_server: Any) -> None:
    boss = SuperuserFactory()  # may delete system keys; a key scoped to exactly that may not
    scoped = UserKeyFactory(user=boss, scopes=["phoenix_apikeys.delete_systemkey"])
    target = SystemKeyFactory()
    response = call(live_server, "DELETE", f"/v1/system/api_keys/{target.key_id}", scoped.plaintext)
    assert response.status_code == 403
    assert response.json()["detail"] == "A scoped key cannot manage API keys."
    assert SystemKey.objects.filter(pk=target.pk).exists()


# Creation: scopes on every surface, never more than the owner, fixed afterwards ----------------


def create_over_rest(server: Any, user: Any, route: str, scopes: Any) -> requests.Response:
    """As a person logged in (a session and its CSRF pair): keys cannot create keys."""
    caller = session(user)
    body = {"data": {"name": "scoped", "scopes": scopes}}
    return requests.post(
        server.url + route, json=body, headers=caller.headers, cookies=caller.cookies, timeout=30
    )


def test_rest_creates_a_scoped_key_and_lists_its_scopes(live_server: Any, owner: Any) -> None:
    created = create_over_rest(live_server, owner, "/v1/user/api_keys", [VIEW, "read", VIEW])
    assert created.status_code == 201, created.text
    assert created.json()["data"]["scopes"] == ["auth.view_group", "read"]
    key = created.json()["data"]["key"]
    listed = call(live_server, "GET", "/v1/user/api_keys", key).json()["data"]
    assert [entry["scopes"] for entry in listed] == [["auth.view_group", "read"]]


@pytest.mark.parametrize(
    ("scopes", "words"),
    [
        ([ADD, "auth.delete_group"], 'The owner does not have "auth.delete_group"'),
        (["auth.no_such_thing"], 'No permission "auth.no_such_thing" exists.'),
        (["write"], 'Scope "write" is neither "read" nor a permission'),
        (["auth.view group"], "is neither"),
        ([1], "Not a valid string."),
        ("read", "Expected a list of items"),
        (["read"] * 101, "no more than 100"),
    ],
)
def test_rest_refuses_scopes_the_owner_cannot_give(
    live_server: Any, owner: Any, scopes: Any, words: str
) -> None:
    response = create_over_rest(live_server, owner, "/v1/user/api_keys", scopes)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("data.scopes")
    assert words in response.json()["detail"]
    assert not UserKey.objects.exists()


def test_a_system_key_cannot_carry_what_the_system_user_lacks(live_server: Any) -> None:
    admin = SuperuserFactory()  # the admin may do anything; the system user may not
    response = create_over_rest(live_server, admin, "/v1/system/api_keys", [VIEW])
    assert response.status_code == 422
    assert 'The owner does not have "auth.view_group"' in response.json()["detail"]
    grant(system_user(), VIEW)
    assert create_over_rest(live_server, admin, "/v1/system/api_keys", [VIEW]).status_code == 201
    assert SystemKey.objects.get().scope_list == (VIEW,)


def test_scopes_are_fixed_once_the_key_is_made(owner: Any) -> None:
    key = UserKeyFactory(user=owner, scopes=[VIEW])
    key.scopes, key.name = f"{VIEW} {ADD}", "renamed"
    with pytest.raises(TypeError, match="name and description"):
        key.save(update_fields=["scopes"])
    key.save()  # the name changes; the scopes are not written
    stored = UserKey.objects.get(pk=key.pk)
    assert (stored.name, stored.scope_list) == ("renamed", (VIEW,))


def test_the_commands_take_and_show_scopes(owner: Any) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    def create(*scopes: str) -> None:
        options = [option for scope in scopes for option in ("--scope", scope)]
        call_command("create_user_key", "--user", owner.username, "--name", "x", *options)

    with pytest.raises(
        CommandError, match=r'--scope: The owner does not have "auth\.delete_group"'
    ):
        create("auth.delete_group")
    create("read", VIEW)
    assert UserKey.objects.get().scope_list == (VIEW, "read")


# No extra cost, and the pure rules ----------------------------------------------------------


def test_a_scoped_key_costs_no_extra_query(api_client: Any, owner: Any) -> None:
    scoped, unscoped = UserKeyFactory(user=owner, scopes=[VIEW]), UserKeyFactory(user=owner)
    counts = []
    for key in (scoped, unscoped):
        api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")  # first use
        with CaptureQueriesContext(connection) as queries:
            assert (
                api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}").status_code
                == 200
            )
        counts.append(len(queries))
    assert counts == [1, 1]


def test_the_pure_rules() -> None:
    assert method_refusal(("read",), "post") == READ_ONLY
    assert method_refusal(("read",), "OPTIONS") is None
    assert method_refusal((VIEW,), "DELETE") is None
    assert problems(["read", VIEW]) == []
    assert len(problems(["x" * 300 + ".y"])) == 1
    user = UserFactory()
    scoped = ScopedUser(user, frozenset({VIEW}))
    assert scoped == user and isinstance(scoped, type(user))
    with pytest.raises(ValueError):
        scoped.has_perms(VIEW)
    boss = SuperuserFactory()
    narrowed = ScopedUser(boss, frozenset({VIEW}))
    for twin in (
        copy.copy(narrowed),
        copy.deepcopy(narrowed),
        pickle.loads(pickle.dumps(narrowed)),
    ):
        assert isinstance(twin, ScopedUser) and twin.pk == boss.pk
        assert not twin.is_superuser and not twin.is_staff
        assert twin.has_perm(VIEW) and not twin.has_perm(ADD)
