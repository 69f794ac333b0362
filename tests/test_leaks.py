"""No secret in any log at any level (Django's own loggers included), nor on an error page."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from phoenix_apikeys import cache
from phoenix_apikeys.admin import SystemKeyAdmin

from .conftest import ADMIN_SECRET
from .factories import SuperuserFactory, SystemKeyFactory, UserKeyFactory
from .test_admin import SYSTEM_ADD, USER_ADD, add_key, logged_in, nonce_of, shown_key

pytestmark = pytest.mark.django_db

FALLBACK = "tests-only-old-phoenix-secret-0123456789abcdef"
LOGGERS = ("", "django", "django.template", "django.request", "django.db.backends")


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def debug_pages(settings: Any, key_cache: str) -> Iterator[None]:
    """DEBUG on, every secret set, and the key cache failing as a broken Redis would."""
    settings.DEBUG = True
    settings.PHOENIX_ADMIN_SECRET = ADMIN_SECRET
    settings.PHOENIX_SECRET_FALLBACKS = [FALLBACK]

    def broken(name: str) -> Any:
        raise ConnectionError("cache unreachable")

    original, cache.read = cache.read, broken
    yield
    cache.read = original


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as a handler would write it, tracebacks included."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def secrets_in(text: str, settings: Any, *plaintexts: str) -> list[str]:
    values = [
        settings.PHOENIX_SECRET,
        *(getattr(settings, "PHOENIX_SECRET_FALLBACKS", None) or []),
        getattr(settings, "PHOENIX_ADMIN_SECRET", None),
        *plaintexts,
    ]
    return [value[:12] + "…" for value in values if value and value in text]


def error_page(client: Client, *args: Any, **kwargs: Any) -> str:
    response = client.get(*args, **kwargs)
    assert response.status_code == 500
    page = response.content.decode()
    assert "Traceback" in page  # the technical 500 page, with its frames and locals
    return page


def test_the_created_page_logs_no_key_with_the_template_logger_at_debug(
    every_logger_at_debug: pytest.LogCaptureFixture, settings: Any
) -> None:
    client = logged_in(SuperuserFactory())
    shown = [shown_key(add_key(client, SYSTEM_ADD)), shown_key(add_key(client, USER_ADD))]
    logged = logged_text(every_logger_at_debug)
    assert "django.template" in logged, "the template logger is expected to say something"
    assert secrets_in(logged, settings, *shown) == []


def test_authentication_logs_no_secret_at_any_level(
    every_logger_at_debug: pytest.LogCaptureFixture, settings: Any, admin_secret: str
) -> None:
    settings.DEBUG = True  # also the SQL of every query, on django.db.backends
    key = UserKeyFactory()
    client = Client()
    for credential in (key.plaintext, admin_secret, key.plaintext[:-1] + "0", "wrong" * 8):
        client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {credential}")
        client.get("/plain/", HTTP_AUTHORIZATION=f"Bearer {credential}")
    key.delete()
    client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    logged = logged_text(every_logger_at_debug)
    assert "django.db.backends" in logged
    assert secrets_in(logged, settings, key.plaintext) == []


@pytest.mark.parametrize("path", ["/whoami/", "/plain/"])
def test_an_error_inside_verification_shows_no_secret_on_the_debug_page(
    debug_pages: None, settings: Any, path: str
) -> None:
    client = Client(raise_request_exception=False)
    key = SystemKeyFactory()
    for credential in (key.plaintext, ADMIN_SECRET):
        page = error_page(client, path, HTTP_AUTHORIZATION=f"Bearer {credential}")
        assert "cache unreachable" in page
        assert secrets_in(page, settings, key.plaintext) == []


def test_an_error_inside_verification_mails_no_secret_to_the_admins(
    debug_pages: None, settings: Any, mailoutbox: list[Any]
) -> None:
    """With DEBUG off, Django mails the error report, local variables included, to ADMINS."""
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    client = Client(raise_request_exception=False)
    key = UserKeyFactory()
    for credential in (key.plaintext, ADMIN_SECRET):
        response = client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {credential}")
        assert response.status_code == 500
    assert len(mailoutbox) == 2
    for message in mailoutbox:
        report = message.body + "".join(str(part[0]) for part in message.alternatives)
        assert "cache unreachable" in report
        assert "*" * 20 in report  # Django's substitute for a hidden local variable
        assert secrets_in(report, settings, key.plaintext) == []


def test_an_error_in_the_admin_create_view_shows_no_key_on_the_debug_page(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = True
    client = logged_in(SuperuserFactory())
    client.raise_request_exception = False
    nonce = nonce_of(client, SYSTEM_ADD)
    created: list[str] = []
    original = SystemKeyAdmin.create_key

    def create_then_fail(self: Any, request: Any, form: Any) -> Any:
        _key, plaintext = original(self, request, form)
        created.append(plaintext)
        raise RuntimeError("failed after the key was made")

    monkeypatch.setattr(SystemKeyAdmin, "create_key", create_then_fail)
    response = add_key(client, SYSTEM_ADD, nonce=nonce)
    assert response.status_code == 500
    page = response.content.decode()
    assert "failed after the key was made" in page
    assert secrets_in(page, settings, *created) == []


def test_an_error_rendering_the_created_page_shows_no_key_on_the_debug_page(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = True
    monkeypatch.setattr(SystemKeyAdmin, "created_template", "testapp/broken_key_created.html")
    client = logged_in(SuperuserFactory())
    client.raise_request_exception = False
    response = add_key(client, SYSTEM_ADD)
    assert response.status_code == 500
    page = response.content.decode()
    assert "NoReverseMatch" in page
    plaintexts = [line for line in page.split() if line.startswith("phxs_") and len(line) == 43]
    assert plaintexts == []
    assert "&#x27;********&#x27;" in page or "'********'" in page  # masked, not missing
