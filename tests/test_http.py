"""Authentication over real HTTP against a live server: what a client on the wire sees."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from .factories import SystemKeyFactory, UserKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)


def fetch(url: str, authorization: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url)
    if authorization is not None:
        request.add_unredirected_header("Authorization", authorization.decode("latin-1"))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_user_key_over_http(live_server: Any) -> None:
    key = UserKeyFactory()
    status, _, body = fetch(f"{live_server.url}/whoami/", b"Bearer " + key.plaintext.encode())
    assert (status, body["username"]) == (200, key.user.username)


def test_system_key_over_http_on_a_plain_django_view(live_server: Any) -> None:
    key = SystemKeyFactory()
    status, _, body = fetch(f"{live_server.url}/plain/", b"Bearer " + key.plaintext.encode())
    assert (status, body) == (200, {"username": "system"})


def test_admin_secret_over_http(live_server: Any, admin_secret: str) -> None:
    status, _, body = fetch(f"{live_server.url}/admin-only/", b"Bearer " + admin_secret.encode())
    assert (status, body["auth"]) == (200, "admin secret")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        b"Bearer",
        b"Bearer phxu_",
        b"Bearer phxs_" + b"A" * 38,
        b"Bearer \xff\xfe\xfd",
        b"Bearer " + b"x" * 8000,
    ],
)
def test_rejections_over_http_are_401_with_www_authenticate(
    live_server: Any, authorization: bytes | None
) -> None:
    status, headers, body = fetch(f"{live_server.url}/whoami/", authorization)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in body


def test_rejections_on_plain_views_are_401_with_www_authenticate(live_server: Any) -> None:
    status, headers, _ = fetch(f"{live_server.url}/plain/", b"Bearer phxu_nope")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/whoami/", "/plain/"])
@pytest.mark.parametrize("scheme", [b"", b"Token ", b"Api-Key "])
def test_a_key_without_the_keyword_over_http_is_told_how_to_send_it(
    live_server: Any, path: str, scheme: bytes
) -> None:
    key = UserKeyFactory().plaintext
    status, headers, body = fetch(f"{live_server.url}{path}", scheme + key.encode())
    assert (status, body) == (401, {"detail": 'Send the key as "Authorization: Bearer <key>".'})
    assert headers["WWW-Authenticate"].startswith("Bearer")
