"""DRF authentication through the one verification path: principals, failures, query counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from phoenix_apikeys.keys import KeyKind, generate_key
from phoenix_apikeys.models import UserKey, system_user

from .factories import SystemKeyFactory, UserFactory, UserKeyFactory

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


def get(client: APIClient, path: str = "/whoami/", credential: str | None = None) -> Any:
    headers = {} if credential is None else {"HTTP_AUTHORIZATION": f"Bearer {credential}"}
    return client.get(path, **headers)


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)
    ]


def test_user_key_authenticates_as_its_owner(api_client: APIClient) -> None:
    key = UserKeyFactory()
    response = get(api_client, credential=key.plaintext)
    assert response.status_code == 200
    assert response.json()["username"] == key.user.username


def test_user_key_is_request_auth(api_client: APIClient) -> None:
    key = UserKeyFactory()
    response = get(api_client, "/user-only/", key.plaintext)
    assert response.status_code == 200


def test_system_key_authenticates_as_the_system_user(api_client: APIClient) -> None:
    key = SystemKeyFactory()
    response = get(api_client, "/system-only/", key.plaintext)
    assert response.status_code == 200
    assert response.json()["username"] == "system"


def test_admin_secret_authenticates_as_the_system_user(
    api_client: APIClient, admin_secret: str
) -> None:
    response = get(api_client, "/admin-only/", admin_secret)
    assert response.status_code == 200
    assert response.json() == {"username": "system", "auth": "admin secret"}


def test_admin_secret_is_refused_when_not_configured(api_client: APIClient) -> None:
    response = get(api_client, credential="tests-only-admin-secret-9876543210zyxwvu")
    assert response.status_code == 401


def test_missing_header_is_401_with_www_authenticate(api_client: APIClient) -> None:
    response = get(api_client)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_valid_key_costs_one_query_once_recently_used(api_client: APIClient) -> None:
    key = UserKeyFactory()
    assert get(api_client, credential=key.plaintext).status_code == 200  # first use stamps it
    with CaptureQueriesContext(connection) as queries:
        assert get(api_client, credential=key.plaintext).status_code == 200
    assert len(queries) == 1
    assert writes(queries) == []


def test_system_key_costs_one_query_once_recently_used(api_client: APIClient) -> None:
    key = SystemKeyFactory()
    get(api_client, credential=key.plaintext)
    with CaptureQueriesContext(connection) as queries:
        assert get(api_client, credential=key.plaintext).status_code == 200
    assert len(queries) == 1


def test_unknown_well_formed_key_costs_one_query(api_client: APIClient) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = get(api_client, credential=generate_key(KeyKind.USER))
    assert response.status_code == 401
    assert len(queries) == 1


@pytest.mark.parametrize(
    "credential",
    [
        "phxu_" + "A" * 38,  # bad checksum
        "phxs_short",
        "phxu_" + "é" * 38,
        "phxu_" + "a" * 5000,
        "x" * 100_000,
    ],
)
def test_malformed_keys_are_rejected_with_zero_queries(
    api_client: APIClient, credential: str
) -> None:
    UserKeyFactory()
    with CaptureQueriesContext(connection) as queries:
        response = get(api_client, credential=credential)
    assert response.status_code == 401
    assert len(queries) == 0


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "bearer\tphxu_x",
        "Bearer \x00\x01",
        "Bearer " + "\udcff",
        "Bearer" + " x" * 10_000,
    ],
)
def test_malformed_headers_get_401(api_client: APIClient, header: str) -> None:
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.text(max_size=2000))
def test_any_header_text_gets_401_never_5xx(api_client: APIClient, text: str) -> None:
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION="Bearer " + text)
    assert response.status_code == 401


def test_first_use_stamps_last_used_at(api_client: APIClient) -> None:
    key = UserKeyFactory()
    get(api_client, credential=key.plaintext)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_last_used_at_is_written_again_only_after_the_interval(api_client: APIClient) -> None:
    key = UserKeyFactory()
    stale = timezone.now() - timedelta(minutes=6)
    UserKey.objects.filter(pk=key.pk).update(last_used_at=stale)
    with CaptureQueriesContext(connection) as queries:
        get(api_client, credential=key.plaintext)
    assert len(writes(queries)) == 1
    key.refresh_from_db()
    assert key.last_used_at > stale


def test_key_expiring_in_the_future_works(api_client: APIClient) -> None:
    key = UserKeyFactory(expires_at=timezone.now() + timedelta(seconds=30))
    assert get(api_client, credential=key.plaintext).status_code == 200


def test_key_is_refused_at_its_expiry_instant(api_client: APIClient) -> None:
    key = UserKeyFactory(expires_at=timezone.now() + timedelta(days=1))
    UserKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())
    assert get(api_client, credential=key.plaintext).status_code == 401


def test_inactive_owner_key_is_refused(api_client: APIClient) -> None:
    key = UserKeyFactory(user=UserFactory(is_active=False))
    assert get(api_client, credential=key.plaintext).status_code == 401


def test_system_keys_stop_when_the_system_user_is_deactivated(api_client: APIClient) -> None:
    key = SystemKeyFactory()
    user = system_user()
    user.is_active = False
    user.save()
    assert get(api_client, credential=key.plaintext).status_code == 401


def test_revoked_key_is_refused(api_client: APIClient) -> None:
    key = UserKeyFactory()
    key.delete()
    assert get(api_client, credential=key.plaintext).status_code == 401


def test_user_key_presented_as_system_key_is_refused(api_client: APIClient) -> None:
    """Re-prefixing breaks the checksum, and the kinds live in different tables anyway."""
    key = UserKeyFactory()
    forged = "phxs_" + key.plaintext[len("phxu_") :]
    assert get(api_client, credential=forged).status_code == 401


def test_session_login_still_works_beside_keys(api_client: APIClient) -> None:
    user = UserFactory()
    api_client.force_login(user)
    assert get(api_client).json()["username"] == user.username


def test_failed_authentication_sends_the_signal(api_client: APIClient) -> None:
    from phoenix_apikeys.signals import authentication_failed

    seen: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        seen.append(kwargs)

    authentication_failed.connect(receiver)
    try:
        get(api_client, credential=generate_key(KeyKind.USER))
    finally:
        authentication_failed.disconnect(receiver)
    assert [entry["reason"] for entry in seen] == ["unknown user key"]
