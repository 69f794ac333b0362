"""Who may do what through the REST API (the README's principals), over real HTTP.

One row per case: caller, method, route, expected status. A row also proves its effect: a 204
removed the target and anything else left it; a 201 stored a key and anything else stored none;
a 401 carries ``WWW-Authenticate: Bearer``.

Callers (built fresh for every row by ``world``):
  anonymous                no credential at all
  user A / user B          session login, plain users
  staff, no perms          session login, is_staff without any phoenix_apikeys permission
  staff, view system       session login, is_staff with view_systemkey only
  staff, key perms         session login, is_staff with add/view/delete_systemkey and
                           view_all_userkeys
  superuser                session login
  A's key                  a user key of user A
  admin's key              a user key of the superuser
  system key               a system key
  admin secret             PHOENIX_ADMIN_SECRET
  invalid key              a well-formed key that was never issued
  expired key              a user key of user A, past its expiry

Targets in routes: {a_key} a user key of A, {b_key} a user key of B, {system_key} a system key,
{garbage} text that is no id at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from django.utils.crypto import get_random_string

from phoenix_apikeys.ids import key_id
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import AbstractAPIKey, SystemKey, UserKey

from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory

# fmt: off
MATRIX = [
    # caller               method    route                               expected
    ("anonymous",          "GET",    "/v1/user",                         401),
    ("anonymous",          "GET",    "/v1/user/api_keys",                401),
    ("anonymous",          "POST",   "/v1/user/api_keys",                401),
    ("anonymous",          "DELETE", "/v1/user/api_keys/{a_key}",        401),
    ("anonymous",          "GET",    "/v1/users/api_keys",               401),
    ("anonymous",          "GET",    "/v1/system/api_keys",              401),
    ("anonymous",          "POST",   "/v1/system/api_keys",              401),
    ("anonymous",          "DELETE", "/v1/system/api_keys/{system_key}", 401),

    ("user A",             "GET",    "/v1/user",                         200),
    ("user A",             "GET",    "/v1/user/api_keys",                200),
    ("user A",             "POST",   "/v1/user/api_keys",                201),
    ("user A",             "DELETE", "/v1/user/api_keys/{a_key}",        204),
    ("user A",             "DELETE", "/v1/user/api_keys/{b_key}",        404),
    ("user A",             "DELETE", "/v1/user/api_keys/{system_key}",   404),
    ("user A",             "DELETE", "/v1/user/api_keys/{garbage}",      404),
    ("user A",             "GET",    "/v1/users/api_keys",               403),
    ("user A",             "GET",    "/v1/system/api_keys",              403),
    ("user A",             "POST",   "/v1/system/api_keys",              403),
    ("user A",             "DELETE", "/v1/system/api_keys/{system_key}", 403),

    ("user B",             "GET",    "/v1/user",                         200),
    ("user B",             "GET",    "/v1/user/api_keys",                200),
    ("user B",             "POST",   "/v1/user/api_keys",                201),
    ("user B",             "DELETE", "/v1/user/api_keys/{a_key}",        404),
    ("user B",             "DELETE", "/v1/user/api_keys/{b_key}",        204),
    ("user B",             "GET",    "/v1/users/api_keys",               403),
    ("user B",             "GET",    "/v1/system/api_keys",              403),
    ("user B",             "POST",   "/v1/system/api_keys",              403),
    ("user B",             "DELETE", "/v1/system/api_keys/{system_key}", 403),

    ("staff, no perms",    "GET",    "/v1/user",                         200),
    ("staff, no perms",    "GET",    "/v1/user/api_keys",                200),
    ("staff, no perms",    "POST",   "/v1/user/api_keys",                201),
    ("staff, no perms",    "DELETE", "/v1/user/api_keys/{a_key}",        404),
    ("staff, no perms",    "GET",    "/v1/users/api_keys",               403),
    ("staff, no perms",    "GET",    "/v1/system/api_keys",              403),
    ("staff, no perms",    "POST",   "/v1/system/api_keys",              403),
    ("staff, no perms",    "DELETE", "/v1/system/api_keys/{system_key}", 403),

    ("staff, view system", "GET",    "/v1/users/api_keys",               403),
    ("staff, view system", "GET",    "/v1/system/api_keys",              200),
    ("staff, view system", "POST",   "/v1/system/api_keys",              403),
    ("staff, view system", "DELETE", "/v1/system/api_keys/{system_key}", 403),
    ("staff, view system", "DELETE", "/v1/user/api_keys/{a_key}",        404),

    ("staff, key perms",   "GET",    "/v1/user",                         200),
    ("staff, key perms",   "GET",    "/v1/user/api_keys",                200),
    ("staff, key perms",   "POST",   "/v1/user/api_keys",                201),
    ("staff, key perms",   "DELETE", "/v1/user/api_keys/{a_key}",        204),
    ("staff, key perms",   "GET",    "/v1/users/api_keys",               200),
    ("staff, key perms",   "GET",    "/v1/system/api_keys",              200),
    ("staff, key perms",   "POST",   "/v1/system/api_keys",              201),
    ("staff, key perms",   "DELETE", "/v1/system/api_keys/{system_key}", 204),

    ("superuser",          "GET",    "/v1/user",                         200),
    ("superuser",          "GET",    "/v1/user/api_keys",                200),
    ("superuser",          "POST",   "/v1/user/api_keys",                201),
    ("superuser",          "DELETE", "/v1/user/api_keys/{a_key}",        204),
    ("superuser",          "DELETE", "/v1/user/api_keys/{system_key}",   404),
    ("superuser",          "DELETE", "/v1/user/api_keys/{garbage}",      404),
    ("superuser",          "GET",    "/v1/users/api_keys",               200),
    ("superuser",          "GET",    "/v1/system/api_keys",              200),
    ("superuser",          "POST",   "/v1/system/api_keys",              201),
    ("superuser",          "DELETE", "/v1/system/api_keys/{system_key}", 204),
    ("superuser",          "DELETE", "/v1/system/api_keys/{a_key}",      404),
    ("superuser",          "DELETE", "/v1/system/api_keys/{garbage}",    404),

    ("A's key",            "GET",    "/v1/user",                         200),
    ("A's key",            "GET",    "/v1/user/api_keys",                200),
    ("A's key",            "POST",   "/v1/user/api_keys",                403),
    ("A's key",            "DELETE", "/v1/user/api_keys/{a_key}",        204),
    ("A's key",            "DELETE", "/v1/user/api_keys/{b_key}",        404),
    ("A's key",            "GET",    "/v1/users/api_keys",               403),
    ("A's key",            "GET",    "/v1/system/api_keys",              403),
    ("A's key",            "POST",   "/v1/system/api_keys",              403),
    ("A's key",            "DELETE", "/v1/system/api_keys/{system_key}", 403),

    ("admin's key",        "GET",    "/v1/user",                         200),
    ("admin's key",        "GET",    "/v1/user/api_keys",                200),
    ("admin's key",        "POST",   "/v1/user/api_keys",                403),
    ("admin's key",        "DELETE", "/v1/user/api_keys/{a_key}",        204),
    ("admin's key",        "GET",    "/v1/users/api_keys",               200),
    ("admin's key",        "GET",    "/v1/system/api_keys",              200),
    ("admin's key",        "POST",   "/v1/system/api_keys",              403),
    ("admin's key",        "DELETE", "/v1/system/api_keys/{system_key}", 204),

    ("system key",         "GET",    "/v1/user",                         200),
    ("system key",         "GET",    "/v1/user/api_keys",                200),
    ("system key",         "POST",   "/v1/user/api_keys",                403),
    ("system key",         "DELETE", "/v1/user/api_keys/{a_key}",        403),
    ("system key",         "DELETE", "/v1/user/api_keys/{garbage}",      403),
    ("system key",         "GET",    "/v1/users/api_keys",               403),
    ("system key",         "GET",    "/v1/system/api_keys",              403),
    ("system key",         "POST",   "/v1/system/api_keys",              403),
    ("system key",         "DELETE", "/v1/system/api_keys/{system_key}", 403),

    ("admin secret",       "GET",    "/v1/user",                         200),
    ("admin secret",       "GET",    "/v1/user/api_keys",                200),
    ("admin secret",       "POST",   "/v1/user/api_keys",                403),
    ("admin secret",       "DELETE", "/v1/user/api_keys/{a_key}",        204),
    ("admin secret",       "DELETE", "/v1/user/api_keys/{b_key}",        204),
    ("admin secret",       "DELETE", "/v1/user/api_keys/{system_key}",   404),
    ("admin secret",       "GET",    "/v1/users/api_keys",               200),
    ("admin secret",       "GET",    "/v1/system/api_keys",              200),
    ("admin secret",       "POST",   "/v1/system/api_keys",              201),
    ("admin secret",       "DELETE", "/v1/system/api_keys/{system_key}", 204),
    ("admin secret",       "DELETE", "/v1/system/api_keys/{b_key}",      404),

    ("invalid key",        "GET",    "/v1/user",                         401),
    ("invalid key",        "GET",    "/v1/user/api_keys",                401),
    ("invalid key",        "POST",   "/v1/user/api_keys",                401),
    ("invalid key",        "DELETE", "/v1/user/api_keys/{a_key}",        401),
    ("invalid key",        "GET",    "/v1/users/api_keys",               401),
    ("invalid key",        "GET",    "/v1/system/api_keys",              401),
    ("invalid key",        "POST",   "/v1/system/api_keys",              401),
    ("invalid key",        "DELETE", "/v1/system/api_keys/{system_key}", 401),

    ("expired key",        "GET",    "/v1/user",                         401),
    ("expired key",        "GET",    "/v1/user/api_keys",                401),
    ("expired key",        "POST",   "/v1/user/api_keys",                401),
    ("expired key",        "DELETE", "/v1/user/api_keys/{a_key}",        401),
    ("expired key",        "GET",    "/v1/users/api_keys",               401),
    ("expired key",        "GET",    "/v1/system/api_keys",              401),
    ("expired key",        "POST",   "/v1/system/api_keys",              401),
    ("expired key",        "DELETE", "/v1/system/api_keys/{system_key}", 401),
]
# fmt: on

KEY_PERMISSIONS = ("add_systemkey", "view_systemkey", "delete_systemkey", "view_all_userkeys")
CREATED_NAME = "made by the matrix"


@dataclass
class Caller:
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    callers: dict[str, Caller]
    targets: dict[str, AbstractAPIKey]


def session(user: Any) -> Caller:
    """A real session cookie plus a CSRF cookie/header pair, as a browser would send them."""
    client = Client()
    client.force_login(user)
    csrf = get_random_string(32)
    return Caller(
        headers={"X-CSRFToken": csrf},
        cookies={
            settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value,
            settings.CSRF_COOKIE_NAME: csrf,
        },
    )


def bearer(credential: str) -> Caller:
    return Caller(headers={"Authorization": f"Bearer {credential}"})


def staff_with(*codenames: str) -> Any:
    user = StaffFactory()
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def expired_key(owner: Any) -> UserKey:
    key = UserKeyFactory(user=owner, expires_at=timezone.now() + timedelta(days=1))
    UserKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return key


@pytest.fixture
def world(admin_secret: str) -> World:
    user_a, user_b, superuser = UserFactory(), UserFactory(), SuperuserFactory()
    callers = {
        "anonymous": Caller(),
        "user A": session(user_a),
        "user B": session(user_b),
        "staff, no perms": session(StaffFactory()),
        "staff, view system": session(staff_with("view_systemkey")),
        "staff, key perms": session(staff_with(*KEY_PERMISSIONS)),
        "superuser": session(superuser),
        "A's key": bearer(UserKeyFactory(user=user_a).plaintext),
        "admin's key": bearer(UserKeyFactory(user=superuser).plaintext),
        "system key": bearer(SystemKeyFactory().plaintext),
        "admin secret": bearer(admin_secret),
        "invalid key": bearer(generate_key("phxu_")),
        "expired key": bearer(expired_key(user_a).plaintext),
    }
    targets: dict[str, AbstractAPIKey] = {
        "a_key": UserKeyFactory(user=user_a),
        "b_key": UserKeyFactory(user=user_b),
        "system_key": SystemKeyFactory(),
    }
    return World(callers=callers, targets=targets)


def resolve(route: str, targets: dict[str, AbstractAPIKey]) -> str:
    ids = {name: key_id(key.kind, key.pk) for name, key in targets.items()}
    return route.format(garbage="not-an-id%20%00..", **ids)


def target_of(route: str, world: World) -> AbstractAPIKey | None:
    for name, key in world.targets.items():
        if "{" + name + "}" in route:
            return key
    return None


def keys_named(name: str) -> int:
    return UserKey.objects.filter(name=name).count() + SystemKey.objects.filter(name=name).count()


def send(live_server: Any, world: World, caller: str, method: str, route: str) -> Any:
    credentials = world.callers[caller]
    return requests.request(
        method,
        live_server.url + resolve(route, world.targets),
        headers=credentials.headers,
        cookies=credentials.cookies,
        json={"data": {"name": CREATED_NAME}} if method == "POST" else None,
        timeout=30,
    )


# HEAD runs the GET handler: it must pass GET's permissions, and reveal nothing more.
ROWS = MATRIX + [
    (caller, "HEAD", route, code) for caller, verb, route, code in MATRIX if verb == "GET"
]


@pytest.mark.parametrize(
    ("caller", "method", "route", "expected"),
    ROWS,
    ids=[f"{caller} {method} {route} -> {expected}" for caller, method, route, expected in ROWS],
)
def test_permission_matrix(
    live_server: Any, world: World, caller: str, method: str, route: str, expected: int
) -> None:
    response = send(live_server, world, caller, method, route)
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if method == "POST":
        assert keys_named(CREATED_NAME) == (1 if expected == 201 else 0)
    if method == "HEAD":
        assert response.content == b""
    target = target_of(route, world)
    if method == "DELETE" and target is not None:
        still_there = type(target)._default_manager.filter(pk=target.pk).exists()
        assert still_there == (expected != 204)
