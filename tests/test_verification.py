"""verify_credential, the one path every entry point takes: what it returns and refuses."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from phoenix_apikeys import cache, throttle
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import UserKey, system_user
from phoenix_apikeys.outage import VerificationUnavailable
from phoenix_apikeys.verification import ADMIN_SECRET, CredentialRejected, verify_credential

from .factories import SystemKeyFactory, UserKeyFactory, key_of_inactive_owner

pytestmark = pytest.mark.django_db


def test_a_user_key_is_its_owner_and_itself() -> None:
    key = UserKeyFactory()
    user, auth = verify_credential(key.plaintext)
    assert (user, auth) == (key.user, key)


def test_a_system_key_is_the_system_user() -> None:
    key = SystemKeyFactory()
    user, auth = verify_credential(key.plaintext)
    assert (user.pk, auth) == (system_user().pk, key)


def test_the_admin_secret_is_the_system_user_and_the_marker(admin_secret: str) -> None:
    user, auth = verify_credential(admin_secret)
    assert (user.pk, auth) == (system_user().pk, ADMIN_SECRET)


@pytest.mark.parametrize(
    "credential", ["phxu_short", "phxs_" + "A" * 38, "x" * 1025, "not-any-secret-0123456789abcdef"]
)
def test_malformed_or_foreign_credentials_are_refused_without_a_query(credential: str) -> None:
    with CaptureQueriesContext(connection) as queries, pytest.raises(CredentialRejected):
        verify_credential(credential)
    assert len(queries) == 0


def test_an_unknown_key_is_refused_after_one_query() -> None:
    with CaptureQueriesContext(connection) as queries, pytest.raises(CredentialRejected):
        verify_credential(generate_key("phxu_"))
    assert len(queries) == 1


def test_a_key_of_one_kind_is_not_found_among_the_other() -> None:
    key = UserKeyFactory()
    system_shaped = key.plaintext.replace("phxu_", "phxs_", 1)
    with pytest.raises(CredentialRejected):
        verify_credential(system_shaped)


def test_expired_and_inactive_owner_keys_are_refused() -> None:
    expired = UserKeyFactory(expires_at=timezone.now() + timedelta(hours=1))
    UserKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    inactive = key_of_inactive_owner()
    for key in (expired, inactive):
        with pytest.raises(CredentialRejected):
            verify_credential(key.plaintext)


def test_a_database_that_cannot_be_asked_is_unavailable_not_a_no(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = UserKeyFactory()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    with pytest.raises(VerificationUnavailable):
        verify_credential(key.plaintext)


def test_a_blocked_source_is_refused_before_the_query(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 1}
    throttle.count_failure("203.0.113.9")
    with CaptureQueriesContext(connection) as queries, pytest.raises(throttle.TooManyFailures):
        verify_credential(generate_key("phxu_"), source="203.0.113.9")
    assert len(queries) == 0
    key = UserKeyFactory()
    assert verify_credential(key.plaintext, source="198.51.100.1")[1] == key


@pytest.mark.parametrize("foreign", ["not-a-key", 42, ["a", "list"]])
def test_a_cache_entry_that_is_not_a_key_is_a_miss(
    foreign: Any, monkeypatch: pytest.MonkeyPatch, admin_secret: str
) -> None:
    """Something else wrote under our name in the shared cache: the database answers."""
    key = UserKeyFactory()
    stamp = ("generation", "version")
    monkeypatch.setattr(cache, "read", lambda name: cache.Entry(foreign, stamp, time.time()))
    monkeypatch.setattr(cache, "store", lambda *args, **kwargs: None)
    assert verify_credential(key.plaintext) == (key.user, key)
    user, _auth = verify_credential(admin_secret)
    assert user == system_user()
