"""APIKeyMiddleware: keys for plain Django views, through the same verification path."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from phoenix_apikeys.http import keyword_hint

from .factories import SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory

pytestmark = pytest.mark.django_db

KEY_MIDDLEWARE = "phoenix_apikeys.middleware.APIKeyMiddleware"


def test_plain_view_sees_the_key_owner() -> None:
    key = UserKeyFactory()
    response = Client().get("/plain/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.json() == {"username": key.user.username}


def test_plain_view_without_a_key_is_anonymous() -> None:
    assert Client().get("/plain/").status_code == 403


def test_bad_key_is_401_not_anonymous() -> None:
    response = Client().get("/plain/", HTTP_AUTHORIZATION="Bearer phxu_nope")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_other_schemes_are_left_alone() -> None:
    assert Client().get("/plain/", HTTP_AUTHORIZATION="Token abc").status_code == 403


def test_key_request_needs_no_csrf_token() -> None:
    key = SystemKeyFactory()
    client = Client(enforce_csrf_checks=True)
    response = client.post("/plain/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 200


def test_a_session_request_to_a_plain_view_still_needs_its_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    refused = client.post("/plain/")
    assert refused.status_code == 403
    assert b"CSRF" in refused.content
    client.get("/admin/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.post("/plain/", HTTP_X_CSRFTOKEN=token).status_code == 200


def test_with_djangos_own_csrf_middleware_a_keys_post_is_refused(settings: Any) -> None:
    settings.MIDDLEWARE = [
        "django.middleware.csrf.CsrfViewMiddleware" if m.endswith("CsrfViewMiddleware") else m
        for m in settings.MIDDLEWARE
    ]
    key = SystemKeyFactory()
    client = Client(enforce_csrf_checks=True)
    response = client.post("/plain/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 403
    assert b"CSRF" in response.content


def test_drf_view_behind_the_middleware_verifies_once() -> None:
    key = UserKeyFactory()
    Client().get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")  # stamps last_used_at
    with CaptureQueriesContext(connection) as queries:
        response = Client().get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 200
    assert len(queries) == 1


# Keys are credentials for APIs, never for the Django admin ------------------------------------

ADMIN_PAGES = ["/admin/", "/admin/testapp/user/", "/admin/phoenix_apikeys/systemkey/add/"]
OTHER_SITE_PAGES = ["/other-admin/", "/other-admin/testapp/user/"]


@pytest.mark.parametrize("page", ADMIN_PAGES + OTHER_SITE_PAGES)
def test_a_superusers_key_opens_no_admin_page(page: str) -> None:
    key = UserKeyFactory(user=SuperuserFactory())
    response = Client().get(page, HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 403
    assert "API keys cannot open the Django admin" in response.json()["detail"]


def test_a_key_cannot_post_to_the_admin_either() -> None:
    """The chain seen: a superuser's key sets another superuser's password in the admin."""
    key = UserKeyFactory(user=SuperuserFactory())
    victim = SuperuserFactory()
    secret = "attacker-chosen-password-123"
    response = Client().post(
        f"/admin/testapp/user/{victim.pk}/password/",
        {"password1": secret, "password2": secret, "usable_password": "true"},
        HTTP_AUTHORIZATION=f"Bearer {key.plaintext}",
    )
    assert response.status_code == 403
    victim.refresh_from_db()
    assert not victim.check_password(secret)


def test_system_keys_and_the_admin_secret_open_no_admin_page_even_as_superuser(
    admin_secret: str,
) -> None:
    key = SystemKeyFactory()
    type(key.user)._default_manager.filter(pk=key.user.pk).update(is_staff=True, is_superuser=True)
    for credential in (key.plaintext, admin_secret):
        for page in ADMIN_PAGES:
            response = Client().get(page, HTTP_AUTHORIZATION=f"Bearer {credential}")
            assert response.status_code == 403, (page, response.status_code)


@pytest.mark.parametrize("position", ["first", "before AuthenticationMiddleware", "last"])
def test_the_admin_refuses_keys_wherever_the_middleware_stands(
    settings: Any, position: str
) -> None:
    ours = "phoenix_apikeys.middleware.APIKeyMiddleware"
    others = [m for m in settings.MIDDLEWARE if m != ours]
    where = {
        "first": 0,
        "before AuthenticationMiddleware": others.index(
            "django.contrib.auth.middleware.AuthenticationMiddleware"
        ),
        "last": len(others),
    }[position]
    settings.MIDDLEWARE = [*others[:where], ours, *others[where:]]
    key = UserKeyFactory(user=SuperuserFactory())
    client = Client()
    client.force_login(key.user)  # even alongside a real session, a key request is refused
    response = client.get("/admin/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 403


def test_the_admin_still_opens_for_a_password_login() -> None:
    client = Client()
    client.force_login(SuperuserFactory())
    assert client.get("/admin/").status_code == 200
    assert client.get("/other-admin/").status_code == 200


# One of our keys without the keyword: the same 401 as DRF's ------------------------------------


@pytest.mark.parametrize("header", ["{}", "Token {}", "Api-Key {}", "Basic\t{}"])
def test_a_key_without_the_keyword_gets_401_saying_how_to_send_it(header: str) -> None:
    key = UserKeyFactory().plaintext
    response = Client().get("/plain/", HTTP_AUTHORIZATION=header.format(key))
    assert response.status_code == 401
    assert response.json() == {"detail": keyword_hint()}
    assert keyword_hint() == 'Send the key as "Authorization: Bearer <key>".'
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert key not in response.content.decode()


def test_the_middleware_and_drf_give_the_same_words(settings: Any) -> None:
    key = SystemKeyFactory().plaintext
    through_middleware = Client().get("/plain/", HTTP_AUTHORIZATION=f"Token {key}")
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != KEY_MIDDLEWARE]
    through_drf = Client().get("/whoami/", HTTP_AUTHORIZATION=f"Token {key}")
    assert through_middleware.json() == through_drf.json()
    assert through_middleware["WWW-Authenticate"] == through_drf["WWW-Authenticate"]


def test_a_key_without_the_keyword_counts_as_a_failed_attempt(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 2}
    key = UserKeyFactory().plaintext
    statuses = [
        Client().get("/plain/", HTTP_AUTHORIZATION=f"Token {key}").status_code for _ in "abc"
    ]
    assert statuses == [401, 401, 429]


def test_before_authentication_middleware_a_key_is_lost_on_plain_views(settings: Any) -> None:
    """Why the phoenix_apikeys.E042 check is an error: the session's user replaces the key's."""
    others = [m for m in settings.MIDDLEWARE if m != KEY_MIDDLEWARE]
    settings.MIDDLEWARE = [KEY_MIDDLEWARE, *others]
    key = UserKeyFactory()
    response = Client().get("/plain/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.json() == {"detail": "anonymous"}


@pytest.mark.parametrize("credential", ["phxu_nope", "Token phxu_nope"])
def test_the_middleware_and_drf_send_the_same_401_body(settings: Any, credential: str) -> None:
    header = credential if " " in credential else f"Bearer {credential}"
    from_middleware = Client().get("/plain/", HTTP_AUTHORIZATION=header)
    settings.MIDDLEWARE = [entry for entry in settings.MIDDLEWARE if entry != KEY_MIDDLEWARE]
    from_drf = Client().get("/whoami/", HTTP_AUTHORIZATION=header)
    assert from_middleware.status_code == from_drf.status_code == 401
    assert from_middleware.content == from_drf.content
    assert from_middleware["Content-Type"] == from_drf["Content-Type"] == "application/json"
