"""The compiled key lookup: the ORM's own SQL and instances, compiled once and reused."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from phoenix_apikeys import lookup
from phoenix_apikeys.models import SystemKey, UserKey

from .factories import SystemKeyFactory, UserKeyFactory

pytestmark = pytest.mark.django_db


def orm(model: Any, digest: str) -> Any:
    return model.objects.select_related("user").get(digest=digest)


def field_values(instance: Any) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


@pytest.mark.parametrize(
    ("factory", "model"), [(UserKeyFactory, UserKey), (SystemKeyFactory, SystemKey)]
)
def test_finds_the_same_key_and_owner_as_the_orm(factory: Any, model: Any) -> None:
    key = factory()
    found = lookup.find_by_digests(model, [key.digest], "default")
    expected = orm(model, key.digest)
    assert field_values(found) == field_values(expected)
    assert field_values(found.user) == field_values(expected.user)
    assert not found._state.adding and found._state.db == "default"


def test_owner_comes_from_the_same_query() -> None:
    key = UserKeyFactory()
    with CaptureQueriesContext(connection) as queries:
        found = lookup.find_by_digests(UserKey, [key.digest], "default")
        assert found.user.is_active
    assert len(queries) == 1


def test_unknown_digest_is_none() -> None:
    UserKeyFactory()
    assert lookup.find_by_digests(UserKey, ["0" * 64], "default") is None


def test_any_of_several_digests_finds_the_key() -> None:
    key = UserKeyFactory()
    assert lookup.find_by_digests(UserKey, ["0" * 64, key.digest], "default").pk == key.pk


def test_sql_is_compiled_once_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [UserKeyFactory(), UserKeyFactory()]
    lookup.find_by_digests(UserKey, [keys[0].digest], "default")
    compiled: list[Any] = []
    original = lookup._compile
    monkeypatch.setattr(lookup, "_compile", lambda *a: compiled.append(a) or original(*a))
    for key in keys:
        assert lookup.find_by_digests(UserKey, [key.digest], "default").pk == key.pk
    assert compiled == []


def test_sql_is_compiled_again_after_a_settings_change(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    key = UserKeyFactory()
    lookup.find_by_digests(UserKey, [key.digest], "default")
    compiled: list[Any] = []
    original = lookup._compile
    monkeypatch.setattr(lookup, "_compile", lambda *a: compiled.append(a) or original(*a))
    settings.PHOENIX_APIKEYS = {"CACHE_TIMEOUT": 10}
    assert lookup.find_by_digests(UserKey, [key.digest], "default").pk == key.pk
    assert len(compiled) == 1
