"""The REST API contract: bodies, validation, pagination, shown-once keys.

Who may call what is in ``test_api_permissions.py``; these tests call as a permitted caller.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys.ids import key_id
from phoenix_apikeys.keys import KeyKind
from phoenix_apikeys.models import SystemKey, UserKey, system_user
from phoenix_apikeys.rest.serializers import credential_name

from .factories import SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory

pytestmark = pytest.mark.django_db

KEY_FIELDS = {
    "id",
    "name",
    "description",
    "created_at",
    "expires_at",
    "last_used_at",
    "scopes",
    "allowed_networks",
    "rate_limit",
    "remaining_uses",
    "disabled",
    "last_used_from",
}
Bearer = Callable[[str], dict[str, str]]


@pytest.fixture
def user_client(api_client: APIClient) -> APIClient:
    api_client.force_login(UserFactory())
    return api_client


@pytest.fixture
def admin_client(api_client: APIClient) -> APIClient:
    api_client.force_login(SuperuserFactory())
    return api_client


def create(client: APIClient, body: Any, route: str = "/v1/user/api_keys") -> Any:
    return client.post(route, body, format="json")


def post_raw(client: APIClient, text: str | bytes, route: str = "/v1/user/api_keys") -> Any:
    return client.post(route, text, content_type="application/json")


def in_days(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


# who am I


def test_who_am_i_describes_a_logged_in_user(api_client: APIClient) -> None:
    user = UserFactory()
    api_client.force_login(user)
    data = api_client.get("/v1/user").json()["data"]
    assert data == {
        "id": base64.b64encode(f"User:{user.pk}".encode()).decode(),
        "username": user.username,
        "email": user.email,
        "credential": "login",
    }


def test_who_am_i_with_the_admin_secret_is_the_system_user(
    api_client: APIClient, admin_secret: str, bearer: Bearer
) -> None:
    data = api_client.get("/v1/user", **bearer(admin_secret)).json()["data"]
    assert (data["username"], data["credential"]) == ("system", "admin_secret")


def test_who_am_i_names_a_key_credential(api_client: APIClient, bearer: Bearer) -> None:
    key = SystemKeyFactory()
    data = api_client.get("/v1/user", **bearer(key.plaintext)).json()["data"]
    assert (data["username"], data["credential"]) == ("system", "system_key")


def test_who_am_i_reports_a_host_auth_object_as_other() -> None:
    assert credential_name(object()) == "other"


# creating keys


def test_create_returns_the_key_object_and_the_plaintext(user_client: APIClient) -> None:
    response = create(user_client, {"data": {"name": "notebook", "description": "for Jupyter"}})
    assert response.status_code == 201
    data = response.json()["data"]
    assert set(data) == KEY_FIELDS | {"key"}
    assert (data["name"], data["description"], data["expires_at"]) == (
        "notebook",
        "for Jupyter",
        None,
    )
    assert data["key"].startswith("phxu_")


def test_basic_auth_is_a_human_login_that_may_create(api_client: APIClient) -> None:
    user = UserFactory()
    credentials = base64.b64encode(f"{user.username}:correct horse battery staple".encode())
    response = api_client.post(
        "/v1/user/api_keys",
        {"data": {"name": "x"}},
        format="json",
        HTTP_AUTHORIZATION=f"Basic {credentials.decode()}",
    )
    assert response.status_code == 201
    assert UserKey.objects.get().user == user


def test_the_created_response_may_not_be_cached(user_client: APIClient) -> None:
    response = create(user_client, {"data": {"name": "notebook"}})
    assert response["Cache-Control"] == "no-store"


def test_a_created_user_key_authenticates_as_its_creator(
    api_client: APIClient, bearer: Bearer
) -> None:
    user = UserFactory()
    api_client.force_login(user)
    plaintext = create(api_client, {"data": {"name": "script"}}).json()["data"]["key"]
    api_client.logout()
    me = api_client.get("/v1/user", **bearer(plaintext)).json()["data"]
    assert (me["username"], me["credential"]) == (user.username, "user_key")


def test_a_created_system_key_authenticates_as_the_system_user(
    admin_client: APIClient, bearer: Bearer
) -> None:
    plaintext = create(admin_client, {"data": {"name": "ci"}}, "/v1/system/api_keys").json()[
        "data"
    ]["key"]
    admin_client.logout()
    me = admin_client.get("/v1/user", **bearer(plaintext)).json()["data"]
    assert (me["username"], me["credential"]) == ("system", "system_key")


def test_the_plaintext_is_stored_nowhere(user_client: APIClient) -> None:
    plaintext = create(user_client, {"data": {"name": "x"}}).json()["data"]["key"]
    stored = [str(value) for row in UserKey.objects.values() for value in row.values()]
    assert not any(plaintext in value for value in stored)


def test_the_key_is_shown_only_once(user_client: APIClient) -> None:
    create(user_client, {"data": {"name": "x"}})
    listed = user_client.get("/v1/user/api_keys").json()["data"]
    assert [set(key) for key in listed] == [KEY_FIELDS]


def test_the_plaintext_never_reaches_a_log(
    api_client: APIClient, bearer: Bearer, caplog: pytest.LogCaptureFixture
) -> None:
    api_client.force_login(UserFactory())
    with caplog.at_level(logging.DEBUG):
        response = create(api_client, {"data": {"name": "x"}})
        plaintext = response.json()["data"]["key"]
        api_client.get("/v1/user", **bearer(plaintext))
        api_client.delete(f"/v1/user/api_keys/{response.json()['data']['id']}")
        api_client.get("/v1/user", **bearer(plaintext))
    assert caplog.records
    assert not any(plaintext in record.getMessage() for record in caplog.records)


def test_creating_without_a_usable_phoenix_secret_is_503(
    user_client: APIClient, settings: Any
) -> None:
    settings.PHOENIX_SECRET = "too-short-1"
    response = create(user_client, {"data": {"name": "x"}})
    assert response.status_code == 503
    assert "PHOENIX_SECRET" in response.json()["detail"]


def test_the_name_is_stripped(user_client: APIClient) -> None:
    response = create(user_client, {"data": {"name": "  padded  "}})
    assert response.json()["data"]["name"] == "padded"


def test_an_admin_secret_system_key_records_the_system_user_as_creator(
    api_client: APIClient, admin_secret: str, bearer: Bearer
) -> None:
    api_client.post(
        "/v1/system/api_keys", {"data": {"name": "sidecar"}}, format="json", **bearer(admin_secret)
    )
    assert SystemKey.objects.get().created_by == system_user()


def test_a_system_key_made_in_person_records_its_creator(api_client: APIClient) -> None:
    admin = SuperuserFactory()
    api_client.force_login(admin)
    create(api_client, {"data": {"name": "ci"}}, "/v1/system/api_keys")
    assert SystemKey.objects.get().created_by == admin


def test_expires_at_is_kept(user_client: APIClient) -> None:
    expires_at = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    response = create(user_client, {"data": {"name": "x", "expires_at": expires_at.isoformat()}})
    assert response.status_code == 201
    assert UserKey.objects.get().expires_at == expires_at


def test_a_naive_expires_at_is_utc_whatever_the_time_zone(
    user_client: APIClient, settings: Any
) -> None:
    settings.TIME_ZONE = "America/New_York"
    naive = (timezone.now() + timedelta(days=30)).replace(tzinfo=None, microsecond=0)
    create(user_client, {"data": {"name": "x", "expires_at": naive.isoformat()}})
    assert UserKey.objects.get().expires_at == naive.replace(tzinfo=dt_timezone.utc)


# validation: 422 naming the field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": {"name": ""}}, "data.name"),
        ({"data": {"name": "   "}}, "data.name"),
        ({"data": {}}, "data.name"),
        ({"data": {"name": None}}, "data.name"),
        ({"data": {"name": ["x"]}}, "data.name"),
        ({"data": {"name": "x" * 256}}, "data.name"),
        ({"data": {"name": "nul\x00"}}, "data.name"),
        ({"data": {"name": "x", "description": "x" * 5000}}, "data.description"),
        ({"data": {"name": "x", "description": None}}, "data.description"),
        ({"data": {"name": "x", "expires_at": "yesterday"}}, "data.expires_at"),
        ({"data": {"name": "x", "expires_at": 12}}, "data.expires_at"),
        ({"data": {"name": "x", "expires_at": "2000-01-01T00:00:00Z"}}, "data.expires_at"),
        ({"data": {"name": "x", "expires_at": "9999-12-31T23:59:59-10:00"}}, "data.expires_at"),
        ({"data": "notebook"}, "data"),
        ({"name": "notebook"}, "data"),
        ([], "body"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(user_client: APIClient, body: Any, field: str) -> None:
    response = create(user_client, body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}: ")
    assert not UserKey.objects.exists()


def test_an_expiry_in_the_past_says_so(user_client: APIClient) -> None:
    response = create(user_client, {"data": {"name": "x", "expires_at": in_days(-1)}})
    assert response.json() == {"detail": "data.expires_at: Expiry must be in the future."}


def test_an_expiry_beyond_the_lifetime_policy_is_422(user_client: APIClient, settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": timedelta(days=90)}
    response = create(user_client, {"data": {"name": "x", "expires_at": in_days(91)}})
    assert response.status_code == 422
    assert "data.expires_at" in response.json()["detail"]
    assert "90 days" in response.json()["detail"]


def test_system_key_creation_validates_too(admin_client: APIClient) -> None:
    response = create(admin_client, {"data": {"name": " "}}, "/v1/system/api_keys")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("data.name: ")


@pytest.mark.parametrize("text", ["", "{", "nope", '{"data": {"name": "x"}', b"\xff\xfe"])
def test_malformed_json_is_422(user_client: APIClient, text: str | bytes) -> None:
    response = post_raw(user_client, text)
    assert response.status_code == 422


def test_a_non_json_body_is_415(user_client: APIClient) -> None:
    response = user_client.post("/v1/user/api_keys", {"data": "x"}, format="multipart")
    assert response.status_code == 415


def test_a_body_over_the_upload_limit_is_a_json_413(user_client: APIClient) -> None:
    response = post_raw(user_client, '{"data": {"name": "' + "x" * 3_000_000 + '"}}')
    assert response.status_code == 413
    assert response.json() == {"detail": "body: The request body is too large."}
    assert not UserKey.objects.exists()


def test_a_session_needs_the_csrf_token_to_create() -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    response = client.post("/v1/user/api_keys", {"data": {"name": "x"}}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not UserKey.objects.exists()


# listing


def test_my_keys_lists_only_my_own(api_client: APIClient) -> None:
    mine = UserKeyFactory()
    UserKeyFactory()
    api_client.force_login(mine.user)
    listed = api_client.get("/v1/user/api_keys").json()["data"]
    assert [key["id"] for key in listed] == [key_id(KeyKind.USER, mine.pk)]


def test_listings_show_last_used_at(api_client: APIClient, bearer: Bearer) -> None:
    key = UserKeyFactory()
    api_client.get("/v1/user", **bearer(key.plaintext))
    listed = api_client.get("/v1/user/api_keys", **bearer(key.plaintext)).json()["data"]
    assert listed[0]["last_used_at"] is not None


@pytest.mark.parametrize("credential", ["system key", "admin secret"])
def test_machine_credentials_own_no_user_keys(
    api_client: APIClient, admin_secret: str, bearer: Bearer, credential: str
) -> None:
    # Even a user key wrongly owned by the system user (create_key refuses to make one; a raw
    # save does not) is not listed.
    UserKey(user=system_user(), name="stray", digest="0" * 64, hint="0000").save(force_insert=True)
    plaintext = SystemKeyFactory().plaintext if credential == "system key" else admin_secret
    response = api_client.get("/v1/user/api_keys", **bearer(plaintext))
    assert response.json() == {"data": [], "next_cursor": None}


def test_system_keys_are_listed_without_plaintext(admin_client: APIClient) -> None:
    key = SystemKeyFactory(description="deploys")
    listed = admin_client.get("/v1/system/api_keys").json()["data"]
    assert listed == [
        {
            "id": key_id(KeyKind.SYSTEM, key.pk),
            "name": key.name,
            "description": "deploys",
            "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
            "expires_at": None,
            "last_used_at": None,
            "scopes": [],
            "allowed_networks": [],
            "rate_limit": None,
            "remaining_uses": None,
            "disabled": False,
            "last_used_from": [],
        }
    ]


# the admin inventory


def test_the_inventory_names_each_owner(admin_client: APIClient) -> None:
    key = UserKeyFactory()
    data = admin_client.get("/v1/users/api_keys").json()["data"]
    assert data[0]["user"] == {
        "id": base64.b64encode(f"User:{key.user.pk}".encode()).decode(),
        "username": key.user.username,
        "email": key.user.email,
    }
    assert set(data[0]) == KEY_FIELDS | {"user"}


def test_the_inventory_pages_through_every_key_once(admin_client: APIClient) -> None:
    keys = [UserKeyFactory() for _ in range(5)]
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        body = admin_client.get(f"/v1/users/api_keys?limit=2{cursor}").json()
        seen += [key["id"] for key in body["data"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == [key_id(KeyKind.USER, key.pk) for key in reversed(keys)]


def test_the_last_page_has_no_next_cursor(admin_client: APIClient) -> None:
    UserKeyFactory()
    body = admin_client.get("/v1/users/api_keys?limit=1").json()
    assert body["next_cursor"] is None
    assert len(body["data"]) == 1


def test_a_limit_of_1000_is_allowed(admin_client: APIClient) -> None:
    assert admin_client.get("/v1/users/api_keys?limit=1000").status_code == 200


@pytest.mark.parametrize("limit", ["1001", "0", "-1", "ten", "1.5", "9" * 2000])
def test_a_bad_limit_is_422_naming_limit(admin_client: APIClient, limit: str) -> None:
    response = admin_client.get(f"/v1/users/api_keys?limit={limit}")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("limit: ")


@pytest.mark.parametrize(
    "cursor",
    ["garbage", key_id(KeyKind.SYSTEM, 1), "x" * 5000, base64.b64encode(b"UserApiKey:0").decode()],
)
def test_a_bad_cursor_is_422_naming_cursor(admin_client: APIClient, cursor: str) -> None:
    response = admin_client.get("/v1/users/api_keys", {"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("cursor: ")


# deleting


def test_a_deleted_key_stops_authenticating(api_client: APIClient, bearer: Bearer) -> None:
    key = UserKeyFactory()
    api_client.force_login(key.user)
    response = api_client.delete(f"/v1/user/api_keys/{key_id(KeyKind.USER, key.pk)}")
    assert response.status_code == 204
    api_client.logout()
    assert api_client.get("/v1/user", **bearer(key.plaintext)).status_code == 401


def test_a_deleted_key_stops_authenticating_from_the_cache(
    api_client: APIClient, bearer: Bearer, key_cache: str
) -> None:
    key = SystemKeyFactory()
    assert api_client.get("/v1/user", **bearer(key.plaintext)).status_code == 200
    api_client.force_login(SuperuserFactory())
    api_client.delete(f"/v1/system/api_keys/{key_id(KeyKind.SYSTEM, key.pk)}")
    api_client.logout()
    assert api_client.get("/v1/user", **bearer(key.plaintext)).status_code == 401


@pytest.mark.parametrize(
    "key_route", ["/v1/user/api_keys/{}", "/v1/system/api_keys/{}"], ids=["user", "system"]
)
@pytest.mark.parametrize(
    "value",
    [
        "x" * 10_000,
        "%00",
        "%F0%9F%94%91",
        "VXNlckFwaUtleTo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
        "a/b",
        "a%2Fb",
        "a%0Ab",
        "",
    ],
    ids=["huge", "nul", "emoji", "huge-pk", "slash", "encoded-slash", "newline", "empty"],
)
def test_a_bad_id_is_a_json_404(admin_client: APIClient, key_route: str, value: str) -> None:
    response = admin_client.delete(key_route.format(value))
    assert response.status_code == 404
    assert response.json() == {"detail": "No such API key."}


def test_a_missing_key_is_404(admin_client: APIClient) -> None:
    key = UserKeyFactory()
    key.delete()
    response = admin_client.delete(f"/v1/user/api_keys/{key_id(KeyKind.USER, key.pk)}")
    assert response.status_code == 404


# authentication


def test_keys_work_even_when_the_host_omits_the_key_authentication(
    api_client: APIClient, bearer: Bearer, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"]
    }
    key = UserKeyFactory()
    assert api_client.get("/v1/user", **bearer(key.plaintext)).status_code == 200
    assert api_client.get("/v1/user")["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_key_is_listed_as_expired(admin_client: APIClient) -> None:
    key = UserKeyFactory(expires_at=timezone.now() + timedelta(days=1))
    past = datetime(2020, 1, 1, tzinfo=dt_timezone.utc)
    UserKey.objects.filter(pk=key.pk).update(expires_at=past)
    listed = admin_client.get("/v1/users/api_keys").json()["data"]
    assert listed[0]["expires_at"] == "2020-01-01T00:00:00Z"


def test_a_system_key_has_no_authority_even_if_the_system_user_were_a_superuser(
    api_client: APIClient, bearer: Bearer
) -> None:
    key = SystemKeyFactory()
    user = system_user()
    user.is_staff = user.is_superuser = True
    user.save()
    assert api_client.get("/v1/system/api_keys", **bearer(key.plaintext)).status_code == 403


@pytest.mark.parametrize(
    "route",
    [
        "/v1/user",
        "/v1/user/api_keys",
        "/v1/user/api_keys/x",
        "/v1/users/api_keys",
        "/v1/system/api_keys",
        "/v1/system/api_keys/x",
    ],
)
@pytest.mark.parametrize("method", ["head", "options", "put", "patch"])
def test_other_methods_never_fail_on_the_server(
    admin_client: APIClient, route: str, method: str
) -> None:
    response = getattr(admin_client, method)(route)
    assert response.status_code < 500
    if method in ("put", "patch"):
        assert response.status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,
        '{"data": ' * 3000 + "1" + "}" * 3000,
        '{"data": {"name": "x", "expires_at": ' + "9" * 5000 + "}}",
        '{"data": {"name": "\\ud800"}}',
        b'{"data": {"name": "\xff\xfe"}}',
    ],
    ids=["deep list", "deep object", "huge number", "lone surrogate", "invalid utf-8"],
)
def test_hostile_json_is_422_never_5xx(
    api_client: APIClient, admin_secret: str, body: str | bytes
) -> None:
    response = api_client.post(
        "/v1/system/api_keys",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {admin_secret}",
    )
    assert response.status_code in (400, 422)
    assert response.json()["detail"]


def test_too_many_query_parameters_is_a_json_400(admin_client: APIClient) -> None:
    query = "&".join(f"p{number}=1" for number in range(1500))
    response = admin_client.get(f"/v1/users/api_keys?{query}")
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]


def test_the_admin_secret_is_told_why_it_cannot_create_a_user_key(
    api_client: APIClient, admin_secret: str, bearer: Bearer
) -> None:
    response = api_client.post(
        "/v1/user/api_keys", {"data": {"name": "x"}}, format="json", **bearer(admin_secret)
    )
    assert response.status_code == 403
    assert response.json()["detail"].startswith("The admin secret acts as the system user")
    assert not UserKey.objects.exists()


def test_a_key_is_told_that_keys_cannot_create_keys(api_client: APIClient, bearer: Bearer) -> None:
    key = UserKeyFactory()
    response = api_client.post(
        "/v1/user/api_keys", {"data": {"name": "x"}}, format="json", **bearer(key.plaintext)
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "API keys cannot do this; log in as a person."


def test_the_mount_point_lists_the_routes() -> None:
    from django.test import Client

    response = Client().get("/v1/")
    assert response.status_code == 200
    routes = {route["path"]: route["methods"] for route in response.json()["data"]["routes"]}
    assert routes["/v1/user"] == ["GET"]
    assert routes["/v1/system/api_keys"] == ["GET", "POST"]
    assert routes["/v1/api_keys/revoke"] == ["POST"]
    for path in routes:  # each one exists (the protected ones ask for credentials)
        status = Client().get(path.replace("{id}", "x")).status_code
        assert status in {401, 404, 405}, path
