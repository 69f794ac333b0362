"""The key lookup: the ORM's answer (managers included) in one query, its SQL built once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, models
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone

from phoenix_apikeys import lookup
from phoenix_apikeys.models import SystemKey, UserKey

from .factories import SystemKeyFactory, UserKeyFactory

pytestmark = pytest.mark.django_db

KEY_KINDS = pytest.mark.parametrize(
    ("factory", "model"), [(UserKeyFactory, UserKey), (SystemKeyFactory, SystemKey)]
)
UNKNOWN = "0" * 64


@pytest.fixture(autouse=True)
def _nothing_built_yet() -> None:
    """Each test starts without SQL built by an earlier one on this thread's connection."""
    lookup._built.plans.clear()


def orm(model: Any, digests: list[str]) -> Any:
    """What the lookup must answer: the default managers' view, through the ORM."""
    owners = get_user_model()._default_manager.all()
    keys = model._default_manager.filter(digest__in=digests, user__in=owners)
    return keys.select_related("user").first()


def field_values(instance: Any) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def find(model: Any, digests: list[str]) -> Any:
    return lookup.find_by_digests(model, digests, "default")


def spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Record the calls of one of lookup's functions, which still runs."""
    calls: list[Any] = []
    original = getattr(lookup, name)
    monkeypatch.setattr(lookup, name, lambda *a: calls.append(a) or original(*a))
    return calls


def refuse(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def fail(*args: Any) -> None:
        raise AssertionError(f"lookup.{name} was called")

    monkeypatch.setattr(lookup, name, fail)


def hiding(field: str, hidden: set[str]) -> Any:
    """A get_queryset that leaves out rows whose ``field`` is in ``hidden`` when it runs, as a
    manager filtering by the current request or tenant does."""

    def get_queryset(manager: models.Manager[Any]) -> Any:
        return models.Manager.get_queryset(manager).exclude(**{f"{field}__in": hidden})

    return get_queryset


@KEY_KINDS
def test_finds_the_same_key_and_owner_as_the_orm(factory: Any, model: Any) -> None:
    key = factory()
    found = find(model, [key.digest])
    expected = orm(model, [key.digest])
    assert type(found) is model and type(found.user) is type(expected.user)
    assert field_values(found) == field_values(expected)
    assert field_values(found.user) == field_values(expected.user)
    assert not found._state.adding and found._state.db == "default"
    assert not found.user._state.adding and found.user._state.db == "default"


@KEY_KINDS
def test_owner_comes_from_the_same_query(factory: Any, model: Any) -> None:
    key = factory()
    with CaptureQueriesContext(connection) as queries:
        found = find(model, [key.digest])
        assert found.user.pk == key.user_id and found.user.is_active
    assert len(queries) == 1


def test_unknown_digest_is_none() -> None:
    UserKeyFactory()
    assert find(UserKey, [UNKNOWN]) is None
    assert find(UserKey, [UNKNOWN, "1" * 64]) is None


def test_no_candidates_is_none_without_a_query() -> None:
    UserKeyFactory()
    with CaptureQueriesContext(connection) as queries:
        assert find(UserKey, []) is None
    assert len(queries) == 0


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_of_several_digests_finds_the_key(position: int) -> None:
    key, other = UserKeyFactory(), UserKeyFactory()
    candidates = [UNKNOWN, "1" * 64]
    candidates.insert(position, key.digest)
    with CaptureQueriesContext(connection) as queries:
        found = find(UserKey, candidates)
    assert found.pk == key.pk != other.pk and found.user.pk == key.user_id
    assert len(queries) == 1


def test_values_are_what_the_orm_gives() -> None:
    """Datetimes aware (SQLite stores them without a time zone), booleans as bool: the same
    values as the ORM's query."""
    now = timezone.now()
    key = UserKeyFactory(expires_at=now + timedelta(days=3))
    UserKey.objects.filter(pk=key.pk).update(last_used_at=now - timedelta(hours=1))
    get_user_model()._default_manager.filter(pk=key.user_id).update(last_login=now)
    found, expected = find(UserKey, [key.digest]), orm(UserKey, [key.digest])
    for instance, reference, names in [
        (found, expected, ["created_at", "expires_at", "last_used_at"]),
        (found.user, expected.user, ["last_login", "date_joined"]),
    ]:
        for name in names:
            value = getattr(instance, name)
            assert timezone.is_aware(value), name
            assert value == getattr(reference, name), name
    assert found.user.is_active is True and found.user.is_staff is False


def test_a_user_manager_that_filters_is_honoured_on_every_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, other = UserKeyFactory(), UserKeyFactory()
    hidden: set[str] = set()
    user_manager = type(get_user_model()._default_manager)
    monkeypatch.setattr(user_manager, "get_queryset", hiding("username", hidden))
    refuse(monkeypatch, "_plan")  # the built SQL cannot know what the manager leaves out
    assert find(UserKey, [key.digest]).pk == key.pk
    hidden.add(key.user.username)  # the next request sees fewer users
    with CaptureQueriesContext(connection) as queries:
        assert find(UserKey, [key.digest]) is None
        found = find(UserKey, [UNKNOWN, other.digest])
        assert found.pk == other.pk and found.user.username == other.user.username
    assert len(queries) == 2
    assert orm(UserKey, [key.digest]) is None  # the ORM agrees
    assert field_values(found) == field_values(orm(UserKey, [other.digest]))


def test_a_key_manager_that_filters_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    key, other = SystemKeyFactory(), SystemKeyFactory()
    hidden = {key.name}
    monkeypatch.setattr(type(SystemKey._default_manager), "get_queryset", hiding("name", hidden))
    refuse(monkeypatch, "_plan")
    with CaptureQueriesContext(connection) as queries:
        assert find(SystemKey, [key.digest]) is None
        assert find(SystemKey, [other.digest]).user.pk == other.user_id
    assert len(queries) == 2
    hidden.clear()
    assert find(SystemKey, [key.digest]).pk == key.pk


def test_plain_managers_take_the_built_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    key = UserKeyFactory()
    refuse(monkeypatch, "_through_managers")
    assert find(UserKey, [key.digest]).pk == key.pk
    assert find(UserKey, [UNKNOWN]) is None


def test_a_model_over_several_tables_is_left_to_the_orm(monkeypatch: pytest.MonkeyPatch) -> None:
    key = UserKeyFactory()
    user_model = get_user_model()
    monkeypatch.setattr(lookup, "_one_table", lambda model: model is not user_model)
    through_managers = spy(monkeypatch, "_through_managers")
    with CaptureQueriesContext(connection) as queries:
        found = find(UserKey, [key.digest])
        assert found.pk == key.pk and found.user.pk == key.user_id
    assert len(queries) == 1 and len(through_managers) == 1


def test_a_column_of_another_type_is_left_to_the_orm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A UUID, decimal or JSON column (say, in a custom user model) needs the backend's own
    conversions: such a model is read through the ORM."""
    key = UserKeyFactory()
    monkeypatch.setattr(lookup, "PLAIN_TYPES", lookup.PLAIN_TYPES - {"BooleanField"})
    lookup._rebuild_after_settings_change()
    through_managers = spy(monkeypatch, "_through_managers")
    found = find(UserKey, [key.digest])
    assert found.pk == key.pk and found.user.email == key.user.email
    assert len(through_managers) == 1
    assert field_values(found) == field_values(orm(UserKey, [key.digest]))


@isolate_apps("tests.testapp")
def test_multi_table_inheritance_spans_tables() -> None:
    # Throwaway models in an isolated registry, never migrated nor shown: no __str__ needed.
    class Person(models.Model):  # noqa: DJ008
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"

    class Member(Person):  # noqa: DJ008
        number = models.IntegerField()

        class Meta:
            app_label = "testapp"

    class Someone(Person):  # noqa: DJ008
        class Meta:
            app_label = "testapp"
            proxy = True

    assert lookup._one_table(Person) and lookup._one_table(Someone)
    assert not lookup._one_table(Member)


def test_sql_is_built_once_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [UserKeyFactory(), UserKeyFactory()]
    built = spy(monkeypatch, "_build")
    for key in keys:
        assert find(UserKey, [key.digest]).pk == key.pk
    assert len(built) == 1
    assert find(UserKey, [UNKNOWN]) is None
    assert find(SystemKey, [UNKNOWN]) is None  # another model
    assert find(UserKey, [UNKNOWN, keys[1].digest]).pk == keys[1].pk  # another size
    assert [(model, size) for model, _, _, size in built] == [
        (UserKey, 1),
        (SystemKey, 1),
        (UserKey, 2),
    ]


def test_sql_is_built_again_after_a_settings_change(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    key = UserKeyFactory()
    find(UserKey, [key.digest])
    built = spy(monkeypatch, "_build")
    settings.PHOENIX_APIKEYS = {"CACHE_TIMEOUT": 10}
    assert find(UserKey, [key.digest]).pk == key.pk
    assert len(built) == 1
    assert find(UserKey, [key.digest]).pk == key.pk
    assert len(built) == 1


def test_another_connection_object_gets_its_own_sql() -> None:
    current = connections["default"]
    plan = lookup._plan(UserKey, "digest", current, 1)
    assert plan is not None and lookup._plan(UserKey, "digest", current, 1) is plan
    other = connections.create_connection("default")  # not connected until used
    try:
        rebuilt = lookup._plan(UserKey, "digest", other, 1)
        assert rebuilt is not None and rebuilt is not plan and rebuilt.connection is other
        assert other.ops.quote_name(UserKey._meta.db_table) in rebuilt.sql
    finally:
        other.close()
