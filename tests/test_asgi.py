"""APIKeyMiddleware under ASGI: Django's async handler, the same rules as the sync one, and the
async verification path (a key held in process memory is answered on the event loop)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from phoenix_apikeys import cache as key_cache_module
from phoenix_apikeys import verification
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import UserKey
from phoenix_apikeys.verification import ADMIN_SECRET, averify_credential

from .factories import SystemKeyFactory, UserKeyFactory, key_of_inactive_owner

pytestmark = pytest.mark.django_db


def async_get(path: str, credential: str | None = None, method: str = "get", **extra: Any) -> Any:
    headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
    client = AsyncClient()
    return async_to_sync(getattr(client, method))(path, headers=headers, **extra)


def test_a_valid_key_reaches_a_plain_view_under_asgi() -> None:
    key = UserKeyFactory()
    response = async_get("/plain/", key.plaintext)
    assert response.status_code == 200
    assert response.json() == {"username": key.user.username}


def test_a_valid_key_reaches_a_drf_view_under_asgi() -> None:
    key = SystemKeyFactory()
    response = async_get("/system-only/", key.plaintext)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "credential", ["phxu_nope", "well-formed unknown key", "x" * 300, "not-our-admin-secret"]
)
def test_a_bad_credential_is_the_same_401_as_under_wsgi(credential: str) -> None:
    if credential == "well-formed unknown key":
        credential = generate_key("phxu_")
    asynchronous = async_get("/plain/", credential)
    synchronous = Client().get("/plain/", HTTP_AUTHORIZATION=f"Bearer {credential}")
    assert asynchronous.status_code == synchronous.status_code == 401
    assert asynchronous.content == synchronous.content
    assert asynchronous["WWW-Authenticate"] == synchronous["WWW-Authenticate"]


def test_an_inactive_owner_is_refused_under_asgi() -> None:
    assert async_get("/plain/", key_of_inactive_owner().plaintext).status_code == 401


def test_a_read_key_may_not_post_under_asgi() -> None:
    key = UserKeyFactory(scopes=["read"])
    assert async_get("/plain/", key.plaintext).status_code == 200
    response = async_get("/plain/", key.plaintext, method="post")
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


def test_failures_are_throttled_under_asgi(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 2, "FAILED_AUTH_WINDOW": 60}
    statuses = [async_get("/plain/", generate_key("phxu_")).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert async_get("/plain/", generate_key("phxu_"))["Retry-After"] == "60"


def test_a_remembered_key_is_answered_without_the_sync_path(monkeypatch: Any) -> None:
    key = UserKeyFactory()
    Client().get("/plain/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")  # last_used_at written
    plaintext = key.plaintext
    key = UserKey.objects.select_related("user").get(pk=key.pk)  # as the cache holds it
    monkeypatch.setattr(key_cache_module, "recall", lambda name, now=None: key)

    def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the warm path left the event loop")

    monkeypatch.setattr(verification, "verify_credential", no_thread)
    user, auth = async_to_sync(averify_credential)(plaintext)
    assert (user, auth) == (key.user, key)


def test_the_admin_secret_is_remembered_once_its_use_is_recorded(
    admin_secret: str, monkeypatch: Any
) -> None:
    assert async_to_sync(averify_credential)(admin_secret)[1] is ADMIN_SECRET  # records its use
    system = verification.system_user()
    monkeypatch.setattr(key_cache_module, "recall", lambda name, now=None: system)
    monkeypatch.setattr(verification, "verify_credential", None)  # would fail if called
    assert async_to_sync(averify_credential)(admin_secret) == (system, ADMIN_SECRET)
