"""DRF authentication through the one verification path: principals, failures, query counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import exceptions
from rest_framework.request import Request, clone_request
from rest_framework.test import APIClient

from phoenix_apikeys import outage
from phoenix_apikeys.authentication import APIKeyAuthentication
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import UserKey, system_user

from .factories import SystemKeyFactory, UserFactory, UserKeyFactory, key_of_inactive_owner

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
        response = get(api_client, credential=generate_key("phxu_"))
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
    key = key_of_inactive_owner()
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
        get(api_client, credential=generate_key("phxu_"))
    finally:
        authentication_failed.disconnect(receiver)
    assert [(entry["reason"], entry["kind"]) for entry in seen] == [
        ("unknown user key", "user_key")
    ]


# The header's grammar (RFC 9110): keyword, spaces or tabs, one visible-ASCII credential -------


@pytest.mark.parametrize("separator", ["\xa0", "\x85", "\u2003", "\x0b", "\x0c", "\r\n "])
def test_only_space_or_tab_separates_the_keyword_from_the_key(
    api_client: APIClient, separator: str
) -> None:
    key = UserKeyFactory()
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer{separator}{key.plaintext}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer {}", "Bearer\t{}", "Bearer  \t {}", "bEaReR {} "])
def test_spaces_and_tabs_around_the_key_are_fine(api_client: APIClient, header: str) -> None:
    key = UserKeyFactory()
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header.format(key.plaintext))
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["Bearer {} junk", "Bearer {}\x00", "Bearer {}\xa0"])
def test_anything_after_the_key_is_refused(api_client: APIClient, header: str) -> None:
    key = UserKeyFactory()
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header.format(key.plaintext))
    assert response.status_code == 401


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "Bearerish abc"])
def test_other_schemes_are_left_to_other_authentication(api_client: APIClient, header: str) -> None:
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header)
    assert response.status_code in (401, 403)
    assert "Invalid API key" not in response.json()["detail"]
    assert "Authorization header" not in response.json()["detail"]


# The database down: a clean 503, never a 500 -----------------------------------------------------


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new cursor fails as it does when PostgreSQL is stopped."""
    monkeypatch.setattr(outage, "_database_down", False)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused: is the server running?")

    monkeypatch.setattr(connection, "cursor", refuse)


@pytest.mark.parametrize("path", ["/whoami/", "/plain/", "/v1/user"])
def test_an_uncached_key_gets_503_with_retry_after_while_the_database_is_down(
    path: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    key = UserKeyFactory()
    request.getfixturevalue("database_down")
    client = APIClient()
    for _ in range(3):
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
        assert response.status_code == 503
        assert response["Content-Type"] == "application/json"
        assert int(response["Retry-After"]) > 0
        assert "database" in response.json()["detail"]
    assert len([r for r in caplog.records if "Database unavailable" in r.message]) == 1


def test_a_cached_key_keeps_working_while_the_database_is_down(
    api_client: APIClient, key_cache: str, request: pytest.FixtureRequest
) -> None:
    key = UserKeyFactory()
    assert get(api_client, credential=key.plaintext).status_code == 200
    request.getfixturevalue("database_down")
    assert get(api_client, credential=key.plaintext).status_code == 200


def test_the_admin_secret_gets_503_while_the_database_is_down(
    api_client: APIClient, admin_secret: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue("database_down")
    response = get(api_client, credential=admin_secret)
    assert response.status_code == 503


def test_the_api_answers_503_when_the_database_fails_after_authentication(
    api_client: APIClient, admin_secret: str, key_cache: str, request: pytest.FixtureRequest
) -> None:
    assert get(api_client, "/v1/system/api_keys", admin_secret).status_code == 200  # cached
    request.getfixturevalue("database_down")
    response = get(api_client, "/v1/system/api_keys", admin_secret)
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The database is unavailable")
    assert int(response["Retry-After"]) > 0


def test_the_database_returning_is_logged_and_keys_work_again(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outage, "_database_down", False)
    key = UserKeyFactory()
    with monkeypatch.context() as down:
        down.setattr(connection, "cursor", lambda *a, **k: (_ for _ in ()).throw(OperationalError))
        assert get(api_client, credential=key.plaintext).status_code == 503
    assert get(api_client, credential=key.plaintext).status_code == 200
    assert any("Database answers again" in r.message for r in caplog.records)


# The DRF class on its own (no APIKeyMiddleware): the same answers ----------------------------


@pytest.fixture
def drf_only(settings: Any) -> None:
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "phoenix_apikeys.middleware.APIKeyMiddleware"
    ]


@pytest.mark.usefixtures("drf_only")
def test_without_the_middleware_a_bad_key_is_401_from_drf(api_client: APIClient) -> None:
    response = get(api_client, credential=generate_key("phxu_"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.usefixtures("drf_only")
def test_without_the_middleware_guessing_is_429_from_drf(
    api_client: APIClient, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 2}
    statuses = [get(api_client, credential=generate_key("phxu_")).status_code for _ in "abc"]
    assert statuses == [401, 401, 429]
    assert int(get(api_client, credential=generate_key("phxu_"))["Retry-After"]) > 0


@pytest.mark.usefixtures("drf_only")
def test_without_the_middleware_the_database_down_is_503_from_drf(
    api_client: APIClient, request: pytest.FixtureRequest
) -> None:
    key = UserKeyFactory()
    request.getfixturevalue("database_down")
    response = get(api_client, credential=key.plaintext)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "database" in response.json()["detail"]


def test_the_exception_handler_makes_a_session_lookup_failure_a_json_503(
    api_client: APIClient, settings: Any, request: pytest.FixtureRequest
) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "EXCEPTION_HANDLER": "phoenix_apikeys.authentication.exception_handler",
    }
    api_client.force_login(UserFactory())
    request.getfixturevalue("database_down")
    response = api_client.get("/whoami/")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "database" in response.json()["detail"]


# One of our keys without the keyword: a 401 that says how to send it ----------------------------


def hint(keyword: str = "Bearer") -> str:
    return f'Send the key as "Authorization: {keyword} <key>".'


HINT = hint()
WITHOUT_KEYWORD = ["{}", "Token {}", "Api-Key {}", "Basic {}", "Bearerish {}", "token\t {}"]


def assert_hint_without_the_key(response: Any, key: str, keyword: str = "Bearer") -> None:
    assert response.status_code == 401
    assert response.json() == {"detail": hint(keyword)}
    assert response["WWW-Authenticate"].startswith(keyword)
    assert key not in response.content.decode()
    assert all(key not in value for value in response.headers.values())


@pytest.mark.parametrize("header", WITHOUT_KEYWORD)
@pytest.mark.parametrize("factory", [UserKeyFactory, SystemKeyFactory])
def test_a_key_without_the_keyword_gets_401_saying_how_to_send_it(
    api_client: APIClient, header: str, factory: Any
) -> None:
    key = factory().plaintext
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header.format(key))
    assert_hint_without_the_key(response, key)


@pytest.mark.usefixtures("drf_only")
@pytest.mark.parametrize("header", WITHOUT_KEYWORD)
def test_without_the_middleware_drf_says_how_to_send_the_key(
    api_client: APIClient, header: str
) -> None:
    key = UserKeyFactory().plaintext
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header.format(key))
    assert_hint_without_the_key(response, key)


@pytest.mark.usefixtures("drf_only")
@pytest.mark.parametrize("header", ["Token phxu_", "phxs_x", "Token  phxu_not-a-key at all"])
def test_anything_starting_with_a_prefix_is_taken_for_a_key(
    api_client: APIClient, header: str
) -> None:
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header)
    assert response.json() == {"detail": HINT}


@pytest.mark.usefixtures("drf_only")
@pytest.mark.parametrize(
    "header", ["Token abc", "Token xphxu_abc", "Token PHXU_abc", "Token=phxu_abc", " phxu_abc"]
)
def test_other_credentials_after_another_scheme_are_not_ours(
    api_client: APIClient, header: str
) -> None:
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["detail"] != HINT


@pytest.mark.usefixtures("drf_only")
def test_the_hint_follows_the_configured_keyword_and_prefixes(
    api_client: APIClient, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"AUTH_HEADER_KEYWORD": "Api-Key", "USER_KEY_PREFIX": "acme_"}
    key = UserKeyFactory().plaintext
    assert key.startswith("acme_")
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert_hint_without_the_key(response, key, "Api-Key")
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 200
    response = api_client.get("/whoami/", HTTP_AUTHORIZATION="Bearer phxu_old-prefix")
    assert response.json()["detail"] != hint("Api-Key")


@pytest.mark.usefixtures("drf_only")
def test_a_key_without_the_keyword_is_never_logged_and_is_signalled_by_kind(
    api_client: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    from phoenix_apikeys.signals import authentication_failed

    key = SystemKeyFactory().plaintext
    seen: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        seen.append(kwargs)

    authentication_failed.connect(receiver)
    try:
        with caplog.at_level("DEBUG"):
            api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Token {key}")
    finally:
        authentication_failed.disconnect(receiver)
    assert [(entry["reason"], entry["kind"]) for entry in seen] == [
        ("key sent without the Authorization keyword", "system_key")
    ]
    assert caplog.records
    assert all(key not in record.getMessage() for record in caplog.records)


@pytest.mark.usefixtures("drf_only")
def test_a_key_without_the_keyword_counts_as_a_failed_attempt(
    api_client: APIClient, settings: Any
) -> None:
    """A client stuck on the wrong header gets the hint until the limit, like any failure."""
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 2}
    key = UserKeyFactory().plaintext
    statuses = [api_client.get("/whoami/", HTTP_AUTHORIZATION=key).status_code for _ in "abc"]
    assert statuses == [401, 401, 429]


def test_a_drf_request_cloned_for_another_method_is_judged_by_that_method(rf: Any) -> None:
    """The browsable API asks a clone of the request whether a form for POST may show: the
    clone's method is the one a key's scopes must allow, not the GET it was made from."""
    key = UserKeyFactory(scopes=["read"])
    request = Request(rf.get("/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}"))
    with pytest.raises(exceptions.PermissionDenied):
        APIKeyAuthentication().authenticate(clone_request(request, "POST"))
    user, auth = APIKeyAuthentication().authenticate(clone_request(request, "HEAD"))
    assert (user, auth) == (key.user, key)
    assert APIKeyAuthentication().authenticate(request) == (key.user, key)
