"""django-ninja: APIKeyAuth and AsyncAPIKeyAuth through real requests (Django's test clients),
with and without APIKeyMiddleware in front: the same principals, scopes, throttle and refusals
as the DRF class."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import DatabaseError
from django.test import AsyncClient, Client

from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import UserKey

from .factories import SystemKeyFactory, UserKeyFactory, key_of_inactive_owner

pytestmark = pytest.mark.django_db

KEY_MIDDLEWARE = "phoenix_apikeys.middleware.APIKeyMiddleware"
PATHS = ["/ninja/hello", "/ninja/async-hello"]


@pytest.fixture(params=["with the middleware", "without the middleware"])
def middleware(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "without the middleware":
        settings.MIDDLEWARE = [entry for entry in settings.MIDDLEWARE if entry != KEY_MIDDLEWARE]
    return str(request.param)


def call(path: str, credential: str | None, method: str = "get", **extra: Any) -> Any:
    """Sync operations through the WSGI test client, async ones through the ASGI one."""
    headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
    if "async" in path:
        return async_to_sync(getattr(AsyncClient(), method))(path, headers=headers, **extra)
    return getattr(Client(), method)(path, headers=headers, **extra)


@pytest.mark.parametrize("path", PATHS)
def test_each_credential_gets_its_principal(path: str, middleware: str, admin_secret: str) -> None:
    user_key, system_key = UserKeyFactory(), SystemKeyFactory()
    assert call(path, user_key.plaintext).json() == {
        "username": user_key.user.username,
        "credential": "UserKey",
    }
    assert call(path, system_key.plaintext).json() == {
        "username": "system",
        "credential": "SystemKey",
    }
    assert call(path, admin_secret).json() == {"username": "system", "credential": "AdminSecret"}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "credential",
    [
        "phxu_nope",
        "well-formed unknown key",
        "p" * 5000,
        "\u00e9t\u00e9",
        "phxu_" + "\u0000" * 10,
        "",
    ],
)
def test_bad_credentials_are_401_never_500(path: str, middleware: str, credential: str) -> None:
    if credential == "well-formed unknown key":
        credential = generate_key("phxu_")
    response = call(path, credential)
    assert response.status_code == 401
    assert "detail" in response.json()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Token phxu_abc", "phxu_abc", "Basic"])
def test_odd_headers_are_401_never_500(path: str, middleware: str, header: str) -> None:
    client_headers = {"Authorization": header}
    if "async" in path:
        response = async_to_sync(AsyncClient().get)(path, headers=client_headers)
    else:
        response = Client().get(path, headers=client_headers)
    assert response.status_code == 401


@pytest.mark.parametrize("path", PATHS)
def test_no_credential_is_drfs_401(path: str, middleware: str) -> None:
    response = call(path, None)
    drf = Client().get("/whoami/")
    assert response.status_code == drf.status_code == 401
    assert response.content == drf.content
    assert response["WWW-Authenticate"] == drf["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("path", PATHS)
def test_refusals_match_the_drf_class_and_challenge_bearer(path: str, middleware: str) -> None:
    response = call(path, "phxu_nope")
    drf = Client().get("/whoami/", HTTP_AUTHORIZATION="Bearer phxu_nope")
    assert response.content == drf.content
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("path", PATHS)
def test_expired_or_inactive_keys_are_refused(path: str, middleware: str) -> None:
    assert call(path, key_of_inactive_owner().plaintext).status_code == 401


@pytest.mark.parametrize("path", PATHS)
def test_a_revoked_key_is_refused(path: str, middleware: str) -> None:
    key = UserKeyFactory()
    assert call(path, key.plaintext).status_code == 200
    UserKey.objects.revoke(key)
    assert call(path, key.plaintext).status_code == 401


@pytest.mark.parametrize("path", PATHS)
def test_a_read_key_may_get_but_not_post(path: str, middleware: str) -> None:
    key = UserKeyFactory(scopes=["read"])
    assert call(path, key.plaintext).status_code == 200
    response = call(path, key.plaintext, method="post")
    assert response.status_code == 403
    assert '"read"' in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
def test_failures_are_throttled_with_retry_after(path: str, middleware: str, settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 2, "FAILED_AUTH_WINDOW": 60}
    statuses = [call(path, generate_key("phxu_")).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert call(path, generate_key("phxu_"))["Retry-After"] == "60"


@pytest.mark.parametrize("path", PATHS)
def test_a_database_that_cannot_be_asked_is_503(
    path: str, middleware: str, monkeypatch: Any
) -> None:
    key = UserKeyFactory()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(UserKey.objects, "find_by_digests", down)
    response = call(path, key.plaintext)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "database is unavailable" in response.json()["detail"]


def test_without_handle_refusals_the_status_and_detail_still_hold(settings: Any) -> None:
    settings.MIDDLEWARE = [entry for entry in settings.MIDDLEWARE if entry != KEY_MIDDLEWARE]
    response = Client().get("/ninja-bare/hello", HTTP_AUTHORIZATION="Bearer phxu_nope")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key."}


def test_the_openapi_schema_declares_the_bearer_scheme() -> None:
    schema = json.loads(Client().get("/ninja/openapi.json").content)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["APIKeyAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["AsyncAPIKeyAuth"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/ninja/hello"]["get"]["security"] == [{"APIKeyAuth": []}]
