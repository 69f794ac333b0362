"""The key lifecycle, stated once: what the managers promise every surface (API, admin,
commands, verification) that calls them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from phoenix_apikeys.conf import phoenix_settings
from phoenix_apikeys.ids import key_id
from phoenix_apikeys.keys import KeyKind, MalformedKey, digest, generate_key
from phoenix_apikeys.models import (
    EXPIRING_WITHIN,
    KEY_MODELS,
    KeyStatus,
    MissingSecretError,
    SystemKey,
    UserKey,
    find_key_by_id,
    find_key_by_plaintext,
    system_user,
)

from .factories import SystemKeyFactory, UserFactory, UserKeyFactory, key_of_inactive_owner

pytestmark = pytest.mark.django_db
OLD_SECRET = "an-older-phoenix-secret-0123456789abcdef"
PAST = timezone.now() - timedelta(seconds=1)


# create_key: one set of errors, by field ---------------------------------------------------


def test_create_returns_the_key_and_its_plaintext_once() -> None:
    key, plaintext = UserKey.objects.create_key(user=UserFactory(), name="ci")
    assert plaintext.startswith("phxu_")
    assert key.digest == digest(plaintext, phoenix_settings.secrets.secret)
    assert key.hint == plaintext[-4:]
    assert plaintext not in repr(plaintext)  # a masked Secret: no traceback shows it


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": "   "}, "name", "blank"),
        ({"name": "\u200b\ufeff"}, "name", "blank"),
        ({"name": "x" * 256}, "name", "at most 255"),
        (
            {"name": "x", "expires_at": timezone.now() - timedelta(seconds=1)},
            "expires_at",
            "future",
        ),
        ({"name": "x", "expires_at": timezone.now().replace(tzinfo=None)}, "expires_at", "zone"),
    ],
)
def test_bad_fields_are_one_validation_error_naming_the_field(
    fields: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        UserKey.objects.create_key(user=UserFactory(), **fields)
    assert list(raised.value.message_dict) == [field]
    assert words in " ".join(raised.value.message_dict[field])
    assert not UserKey.objects.exists()


def test_expiry_beyond_the_lifetime_policy_is_refused(settings: object) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": timedelta(days=90)}  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="90 days"):
        SystemKey.objects.create_key(name="long", expires_at=timezone.now() + timedelta(days=91))
    key, _ = SystemKey.objects.create_key(name="ok", expires_at=timezone.now() + timedelta(days=89))
    assert key.pk is not None


def test_the_name_is_stripped() -> None:
    key, _ = UserKey.objects.create_key(user=UserFactory(), name="  ci  ")
    assert key.name == "ci"


def test_an_inactive_owner_gets_no_key() -> None:
    with pytest.raises(ValidationError) as raised:
        UserKey.objects.create_key(user=UserFactory(is_active=False), name="x")
    assert "inactive" in raised.value.message_dict["user"][0]


def test_the_system_user_owns_no_user_key() -> None:
    with pytest.raises(ValidationError) as raised:
        UserKey.objects.create_key(user=system_user(), name="x")
    assert "system key" in raised.value.message_dict["user"][0]


def test_a_system_key_acts_as_the_system_user() -> None:
    key, _ = SystemKey.objects.create_key(name="deploy")
    assert key.user == system_user()


def test_no_key_is_made_without_a_phoenix_secret(settings: object) -> None:
    settings.PHOENIX_SECRET = None  # type: ignore[attr-defined]
    with pytest.raises(MissingSecretError):
        UserKey.objects.create_key(user=UserFactory(), name="x")
    assert not UserKey.objects.exists()


# Finding a key by its opaque id ----------------------------------------------------------------


def test_a_key_is_found_by_its_opaque_id_and_only_as_its_own_kind() -> None:
    user_key, system_key = UserKeyFactory(), SystemKeyFactory()
    assert UserKey.objects.get_by_key_id(user_key.key_id) == user_key
    assert SystemKey.objects.get_by_key_id(system_key.key_id) == system_key
    assert find_key_by_id(user_key.key_id) == user_key
    assert find_key_by_id(system_key.key_id) == system_key
    # The same primary key under the other kind's name is a different key, never this one.
    with pytest.raises(SystemKey.DoesNotExist):
        SystemKey.objects.get_by_key_id(key_id(KeyKind.SYSTEM, user_key.pk + 1000))
    with pytest.raises(SystemKey.DoesNotExist):
        SystemKey.objects.get_by_key_id(user_key.key_id)


@pytest.mark.parametrize("value", ["", "1", "garbage", "VXNlckFwaUtleTow", "VXNlckFwaUtleTowMQ=="])
def test_garbage_and_non_canonical_ids_find_nothing_without_a_query(value: str) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert find_key_by_id(value) is None
        with pytest.raises(UserKey.DoesNotExist):
            UserKey.objects.get_by_key_id(value)
    assert len(queries) == 0


def test_the_opaque_id_is_not_the_primary_key() -> None:
    key = UserKeyFactory()
    assert key.key_id != str(key.pk)
    assert key.key_id == key_id(KeyKind.USER, key.pk)


# Finding a key by its plaintext (verification and leak revocation) ---------------------------


def test_a_plaintext_finds_its_key_with_the_owner_in_one_query() -> None:
    key = UserKeyFactory()
    with CaptureQueriesContext(connection) as queries:
        found = find_key_by_plaintext(key.plaintext)
        assert found is not None and found.user.pk == key.user.pk
    assert found.pk == key.pk
    assert len(queries) == 1


def test_an_unknown_plaintext_finds_nothing() -> None:
    UserKeyFactory()
    assert find_key_by_plaintext(generate_key("phxu_")) is None


@pytest.mark.parametrize("text", ["", "phxu_", "phxu_" + "a" * 38, "not a key"])
def test_malformed_plaintext_is_refused_before_any_query(text: str) -> None:
    with CaptureQueriesContext(connection) as queries, pytest.raises(MalformedKey):
        find_key_by_plaintext(text)
    assert len(queries) == 0


def test_a_key_made_under_a_fallback_secret_is_found_and_rekeyed(settings: object) -> None:
    settings.PHOENIX_SECRET = OLD_SECRET  # type: ignore[attr-defined]
    key = UserKeyFactory()
    old_digest = key.digest
    settings.PHOENIX_SECRET = "the-new-phoenix-secret-0123456789abcdef"  # type: ignore[attr-defined]
    settings.PHOENIX_SECRET_FALLBACKS = [OLD_SECRET]  # type: ignore[attr-defined]
    found = UserKey.objects.find_by_plaintext(key.plaintext)
    assert found is not None and found.pk == key.pk
    stored = UserKey.objects.get(pk=key.pk).digest
    assert stored != old_digest
    assert stored == digest(key.plaintext, "the-new-phoenix-secret-0123456789abcdef")
    settings.PHOENIX_SECRET_FALLBACKS = []  # type: ignore[attr-defined]
    assert UserKey.objects.find_by_plaintext(key.plaintext) is not None  # no fallback needed now


def test_a_plaintext_of_one_kind_never_finds_the_other_kind() -> None:
    system_key = SystemKeyFactory()
    assert UserKey.objects.find_by_plaintext(system_key.plaintext) is None


def test_finding_by_plaintext_needs_the_secret(settings: object) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET = None  # type: ignore[attr-defined]
    with pytest.raises(MissingSecretError):
        find_key_by_plaintext(key.plaintext)


# Status: one enum, one annotation ------------------------------------------------------------


def test_every_status_in_one_query() -> None:
    now = timezone.now()
    active = UserKeyFactory()
    expiring = UserKeyFactory(expires_at=now + EXPIRING_WITHIN - timedelta(minutes=1))
    later = UserKeyFactory(expires_at=now + EXPIRING_WITHIN + timedelta(minutes=1))
    expired = UserKeyFactory(expires_at=now + timedelta(hours=1))
    UserKey.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(seconds=1))
    inactive = key_of_inactive_owner()
    with CaptureQueriesContext(connection) as queries:
        statuses = dict(UserKey.objects.with_status(now).values_list("pk", "status"))
    assert len(queries) == 1
    assert statuses == {
        active.pk: KeyStatus.ACTIVE,
        expiring.pk: KeyStatus.EXPIRING,
        later.pk: KeyStatus.ACTIVE,
        expired.pk: KeyStatus.EXPIRED,
        inactive.pk: KeyStatus.OWNER_INACTIVE,
    }
    only_expired = UserKey.objects.with_status(now).filter(status=KeyStatus.EXPIRED)
    assert list(only_expired) == [expired]


def test_expired_wins_over_an_inactive_owner() -> None:
    key = key_of_inactive_owner()
    UserKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert UserKey.objects.with_status().get().status == KeyStatus.EXPIRED


OFFSETS = st.one_of(st.none(), st.integers(-30 * 86400, 30 * 86400))


@settings(max_examples=30, deadline=None)
@given(offsets=st.lists(st.tuples(OFFSETS, st.booleans()), min_size=1, max_size=6))
def test_the_status_agrees_with_what_verification_accepts(
    offsets: list[tuple[int | None, bool]],
) -> None:
    """Usable (what verification lets in) is exactly active or expiring; ``usable()`` agrees."""
    UserKey.objects.all().delete()
    now = timezone.now()
    for offset, owner_active in offsets:
        key = UserKeyFactory()
        expires_at = None if offset is None else now + timedelta(seconds=offset)
        UserKey.objects.filter(pk=key.pk).update(expires_at=expires_at)
        if not owner_active:
            key.user.is_active = False
            key.user.save()
    by_status = {key.pk: key.status for key in UserKey.objects.with_status(now)}
    usable = set(UserKey.objects.usable(now).values_list("pk", flat=True))
    for key in UserKey.objects.select_related("user"):
        assert key.is_usable(now) is (key.pk in usable)
        working = by_status[key.pk] in (KeyStatus.ACTIVE, KeyStatus.EXPIRING)
        assert working is key.is_usable(now)


def test_the_key_models_are_one_per_kind() -> None:
    assert {kind: model.kind for kind, model in KEY_MODELS.items()} == {
        KeyKind.SYSTEM: KeyKind.SYSTEM,
        KeyKind.USER: KeyKind.USER,
    }


def test_a_lifetime_policy_refuses_a_key_that_never_expires(settings: object) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": timedelta(days=30)}  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as raised:
        UserKey.objects.create_key(user=UserFactory(), name="forever")
    assert raised.value.message_dict == {
        "expires_at": ["Keys must expire here, within 30 days (MAX_KEY_LIFETIME)."]
    }


@pytest.mark.parametrize(
    ("lifetime", "words"),
    [(timedelta(hours=12), "12 hours"), (timedelta(minutes=1), "1 minute"), (90, "90 seconds")],
)
def test_a_short_lifetime_is_named_in_its_own_unit(
    settings: object, lifetime: object, words: str
) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": lifetime}  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match=f"within {words} "):
        SystemKey.objects.create_key(name="x", expires_at=timezone.now() + timedelta(days=1))


@pytest.mark.parametrize(
    "expires_at",
    [
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC: no database could store it
        "9999-06-01T00:00:00+00:00",
    ],
)
def test_an_expiry_no_database_can_store_is_refused(expires_at: str) -> None:
    from django.utils.dateparse import parse_datetime

    with pytest.raises(ValidationError, match="before 9999"):
        UserKey.objects.create_key(
            user=UserFactory(), name="x", expires_at=parse_datetime(expires_at)
        )
    assert not UserKey.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "tab\there"}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"name": "x", "description": "esc\x1b[2J"}, "description"),
        ({"name": "x", "description": "d" * 4097}, "description"),
    ],
)
def test_names_and_descriptions_hold_no_control_characters(
    fields: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        UserKey.objects.create_key(user=UserFactory(), **fields)
    assert list(raised.value.message_dict) == [field]


def test_a_description_may_hold_lines_and_tabs() -> None:
    key, _ = UserKey.objects.create_key(user=UserFactory(), name="x", description="a\n\tb")
    assert key.description == "a\n\tb"


@pytest.mark.parametrize("mark", ["\u202e", "\u2066", "\u200f"])
def test_names_hold_no_text_direction_controls(mark: str) -> None:
    with pytest.raises(ValidationError):
        UserKey.objects.create_key(user=UserFactory(), name=f"invoice{mark}txt.exe")
