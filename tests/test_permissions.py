"""DRF permission classes for host views, one caller per row."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory

pytestmark = pytest.mark.django_db


def caller(name: str, client: APIClient, admin_secret: str) -> dict[str, str]:
    """Log the client in or return the header for the named caller."""
    if name == "user session":
        client.force_login(UserFactory())
    elif name == "staff session":
        client.force_login(StaffFactory())
    elif name == "superuser session":
        client.force_login(SuperuserFactory())
    elif name == "user key":
        return {"HTTP_AUTHORIZATION": f"Bearer {UserKeyFactory().plaintext}"}
    elif name == "superuser's user key":
        return {"HTTP_AUTHORIZATION": f"Bearer {UserKeyFactory(user=SuperuserFactory()).plaintext}"}
    elif name == "system key":
        return {"HTTP_AUTHORIZATION": f"Bearer {SystemKeyFactory().plaintext}"}
    elif name == "admin secret":
        return {"HTTP_AUTHORIZATION": f"Bearer {admin_secret}"}
    return {}


# caller: expected status on /admin-only/, /system-only/, /user-only/
MATRIX = [
    ("anonymous", 401, 401, 401),
    ("user session", 403, 403, 403),
    ("staff session", 403, 403, 403),
    ("superuser session", 200, 403, 403),
    ("user key", 403, 403, 200),
    ("superuser's user key", 200, 403, 200),
    ("system key", 403, 200, 403),
    ("admin secret", 200, 403, 403),
]


@pytest.mark.parametrize(("name", "admin_only", "system_only", "user_only"), MATRIX)
def test_permission_matrix(
    api_client: APIClient,
    admin_secret: str,
    name: str,
    admin_only: int,
    system_only: int,
    user_only: int,
) -> None:
    headers: Any = caller(name, api_client, admin_secret)
    got = tuple(
        api_client.get(path, **headers).status_code
        for path in ("/admin-only/", "/system-only/", "/user-only/")
    )
    assert got == (admin_only, system_only, user_only)


# SessionAuthentication before APIKeyAuthentication, with APIKeyMiddleware on: Session claims
# the request (request.auth None), and the permission classes still see the key.


def test_session_first_a_valid_system_key_passes_is_system_key() -> None:
    key = SystemKeyFactory()
    response = Client().get(
        "/session-first/system-only/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}"
    )
    assert response.status_code == 200


def test_session_first_a_user_key_fails_is_system_key() -> None:
    key = UserKeyFactory()
    response = Client().get(
        "/session-first/system-only/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}"
    )
    assert response.status_code == 403


def test_session_first_a_key_never_passes_for_a_person() -> None:
    key = UserKeyFactory()
    response = Client().get(
        "/session-first/human-only/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}"
    )
    assert response.status_code == 403


def test_session_first_a_person_logged_in_still_passes_is_human_login() -> None:
    client = Client()
    client.force_login(UserKeyFactory().user)
    assert client.get("/session-first/human-only/").status_code == 200
