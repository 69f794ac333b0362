"""Lifetime policy per kind: a default lifetime for keys made without one, a maximum, and
"never expires" only where the policy allows it, on every surface that makes keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys.admin.forms import expiry_choices
from phoenix_apikeys.keys import KeyKind
from phoenix_apikeys.models import SystemKey, UserKey

from .factories import SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def lifetime_of(key: Any) -> timedelta:
    return key.expires_at - key.created_at


@pytest.fixture
def policy(settings: Any) -> Any:
    """System keys: 30 days by default, 90 at most. User keys: 7 days by default, no maximum."""
    settings.PHOENIX_APIKEYS = {
        "DEFAULT_KEY_LIFETIME": {"system": 30 * 86400, "user": timedelta(days=7)},
        "MAX_KEY_LIFETIME": {"system": timedelta(days=90)},
    }
    return settings


def test_a_key_made_without_an_expiry_gets_its_kinds_default(policy: Any) -> None:
    system, _ = SystemKey.objects.create_key(name="deploy")
    user, _ = UserKey.objects.create_key(user=UserFactory(), name="notebook")
    assert abs(lifetime_of(system) - 30 * DAY) < timedelta(seconds=5)
    assert abs(lifetime_of(user) - 7 * DAY) < timedelta(seconds=5)


def test_the_maximum_is_per_kind(policy: Any) -> None:
    far = timezone.now() + 200 * DAY
    with pytest.raises(ValidationError, match="within 90 days"):
        SystemKey.objects.create_key(name="long", expires_at=far)
    user, _ = UserKey.objects.create_key(user=UserFactory(), name="long", expires_at=far)
    assert user.expires_at == far  # no maximum for user keys


def test_never_is_refused_where_a_maximum_is_set_and_no_default(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": {"user": 86400}}
    with pytest.raises(ValidationError, match="Keys must expire here, within 1 day"):
        UserKey.objects.create_key(user=UserFactory(), name="forever")
    assert SystemKey.objects.create_key(name="forever")[0].expires_at is None


def test_rest_applies_the_default(policy: Any) -> None:
    client = APIClient()
    client.force_login(SuperuserFactory())
    response = client.post("/v1/system/api_keys", {"data": {"name": "ci"}}, format="json")
    assert response.status_code == 201
    assert abs(lifetime_of(SystemKey.objects.get()) - 30 * DAY) < timedelta(seconds=5)
    too_long = (timezone.now() + 91 * DAY).isoformat()
    refused = client.post(
        "/v1/system/api_keys", {"data": {"name": "x", "expires_at": too_long}}, format="json"
    )
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("data.expires_at: Expiry must be within 90 days")


def test_the_command_applies_the_default(policy: Any) -> None:
    call_command("create_user_key", "--user", UserFactory().username, "--name", "nb")
    assert abs(lifetime_of(UserKey.objects.get()) - 7 * DAY) < timedelta(seconds=5)
    with pytest.raises(CommandError, match="--expires-in: Expiry must be within 90 days"):
        call_command("create_system_key", "--name", "x", "--expires-in", "91d")


def test_the_admin_offers_what_the_policy_allows(policy: Any) -> None:
    system = [value for value, _ in expiry_choices(KeyKind.SYSTEM)]
    user = [value for value, _ in expiry_choices(KeyKind.USER)]
    assert system == ["7", "30", "90", "date"]  # nothing past 90 days, and no "never"
    assert user == ["7", "30", "90", "date"]  # a default: every key expires
    client = Client()
    client.force_login(SuperuserFactory())
    form = client.get("/admin/phoenix_apikeys/systemkey/add/").context["adminform"].form
    assert form.initial["expires_in"] == "30"
    assert "at most 90 days" in form.fields["expires_in"].help_text


def test_never_is_offered_only_without_a_policy() -> None:
    assert [value for value, _ in expiry_choices(KeyKind.USER)][-2:] == ["never", "date"]


def test_an_unusual_default_is_offered_as_a_preset(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"DEFAULT_KEY_LIFETIME": timedelta(days=14)}
    assert ("14", "In 14 days") in expiry_choices(KeyKind.USER)


# Checks ----------------------------------------------------------------------------------------


def ids() -> set[str]:
    return {message.id for message in run_checks(include_deployment_checks=True)}


@pytest.mark.parametrize(
    "value",
    [{"system": "30d"}, {"robots": 86400}, {"user": 0}, [86400]],
)
def test_a_bad_per_kind_lifetime_is_e026(settings: Any, value: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": value}
    assert "phoenix_apikeys.E026" in ids()


def test_a_default_longer_than_the_maximum_is_e028(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {
        "DEFAULT_KEY_LIFETIME": {"user": 60 * 86400},
        "MAX_KEY_LIFETIME": 30 * 86400,
    }
    assert "phoenix_apikeys.E028" in ids()
    settings.PHOENIX_APIKEYS = {"DEFAULT_KEY_LIFETIME": 30 * 86400, "MAX_KEY_LIFETIME": 30 * 86400}
    assert "phoenix_apikeys.E028" not in ids()


def test_keys_beyond_a_tightened_policy_are_w006(settings: Any) -> None:
    UserKeyFactory()  # never expires
    SystemKeyFactory(expires_at=timezone.now() + 60 * DAY)
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": {"user": 86400, "system": 30 * 86400}}
    messages = [
        message
        for message in run_checks(include_deployment_checks=True, databases=["default"])
        if message.id == "phoenix_apikeys.W006"
    ]
    assert sorted(message.msg.split(" key")[0] for message in messages) == ["1 system", "1 user"]
    assert "phoenix_apikeys.W006" not in ids()  # it reads the database only when asked to
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": 100 * 86400}
    listed = run_checks(include_deployment_checks=True, databases=["default"])
    assert [m.msg for m in listed if m.id == "phoenix_apikeys.W006"] == [
        "1 user key outlives MAX_KEY_LIFETIME (never expiring, or expiring later than it allows)."
    ]


def test_w006_leaves_an_invalid_value_to_e026(settings: Any) -> None:
    UserKeyFactory()
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": {"user": -5, "system": "2d"}}
    found = {m.id for m in run_checks(include_deployment_checks=True, databases=["default"])}
    assert "phoenix_apikeys.E026" in found and "phoenix_apikeys.W006" not in found
