"""Storage: digests only, lifecycles of the two kinds, and the system user."""

from __future__ import annotations

import logging

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import ProtectedError
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from phoenix_apikeys.models import SystemUser, UserKey, is_system_user, system_user

from .factories import (
    SuperuserFactory,
    SystemKeyFactory,
    UserFactory,
    UserKeyFactory,
)

pytestmark = pytest.mark.django_db


def all_rows_as_text() -> str:
    """Every value of every row of every table, as one string."""
    chunks = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_plaintext_appears_in_no_column_of_any_table(
    api_client: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = [UserKeyFactory(), SystemKeyFactory()]
    for key in keys:
        api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
        key.delete()
    stored = all_rows_as_text()
    for key in keys:
        assert key.plaintext not in stored
        assert key.plaintext[5:-6] not in stored  # not even the random body


def test_plaintext_appears_in_no_log_record(
    api_client: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = UserKeyFactory()
    api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    typo = key.plaintext[:-1] + ("y" if key.plaintext.endswith("x") else "x")
    api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {typo}")
    key.delete()
    api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert caplog.records, "the app is expected to log these events"
    for record in caplog.records:
        assert key.plaintext[5:-6] not in record.getMessage()


def test_deleting_a_user_deletes_their_keys() -> None:
    key = UserKeyFactory()
    key.user.delete()
    assert not UserKey.objects.filter(pk=key.pk).exists()


def test_deleting_the_creator_keeps_the_system_key() -> None:
    creator = SuperuserFactory()
    key = SystemKeyFactory(created_by=creator)
    creator.delete()
    key.refresh_from_db()
    assert key.created_by is None


def test_system_key_acts_as_the_system_user() -> None:
    assert SystemKeyFactory().user == system_user()


def test_system_user_has_an_unusable_password_and_is_created_once() -> None:
    user = system_user()
    assert not user.has_usable_password()
    assert system_user().pk == user.pk


def test_system_user_cannot_be_deleted_while_system_keys_exist() -> None:
    SystemKeyFactory()
    with pytest.raises(ProtectedError):
        system_user().delete()


def test_system_username_is_configurable(settings: object) -> None:
    settings.PHOENIX_APIKEYS = {"SYSTEM_USERNAME": "robot"}  # type: ignore[attr-defined]
    assert system_user().get_username() == "robot"


def test_system_user_is_found_with_one_query() -> None:
    created = system_user()
    with CaptureQueriesContext(connection) as queries:
        found = system_user()
    assert found.pk == created.pk
    assert len(queries) == 1


def test_renaming_the_system_user_moves_nothing(api_client: APIClient, admin_secret: str) -> None:
    """Bound by identity: system keys and the admin secret keep acting as the same user, and the
    admin secret does not mint a new "system" user."""
    key = SystemKeyFactory()
    user = system_user()
    user.username = "renamed"
    user.save()
    for credential in (key.plaintext, admin_secret):
        response = api_client.get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {credential}")
        assert response.status_code == 200
        assert response.json()["username"] == "renamed"
    assert not get_user_model().objects.filter(username="system").exists()
    assert is_system_user(user)


def test_a_user_merely_named_like_the_system_user_is_not_it(settings: object) -> None:
    system_user()
    settings.PHOENIX_APIKEYS = {"SYSTEM_USERNAME": "robot"}  # type: ignore[attr-defined]
    impostor = UserFactory(username="robot")
    assert not is_system_user(impostor)


def test_existing_system_keys_bind_their_user_on_first_need() -> None:
    """A database from before the binding: the user its system keys act as becomes the system
    user, whatever its name."""
    key = SystemKeyFactory()
    SystemUser.objects.all().delete()
    get_user_model().objects.filter(pk=key.user_id).update(username="old-name")
    assert system_user().pk == key.user_id
