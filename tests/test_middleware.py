"""APIKeyMiddleware: keys for plain Django views, through the same verification path."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from .factories import SystemKeyFactory, UserKeyFactory

pytestmark = pytest.mark.django_db


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


def test_drf_view_behind_the_middleware_verifies_once() -> None:
    key = UserKeyFactory()
    Client().get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")  # stamps last_used_at
    with CaptureQueriesContext(connection) as queries:
        response = Client().get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 200
    assert len(queries) == 1
