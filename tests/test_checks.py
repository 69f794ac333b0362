"""System checks: each secret rule alone, all rules in one run, settings and deploy warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import pytest
from django.core.checks import run_checks

from .factories import SystemKeyFactory

GOOD_SECRET = "tests-only-phoenix-secret-0123456789abcdef"
GOOD_ADMIN = "tests-only-admin-secret-9876543210zyxwvu"
# Admin secrets that pass the old str.isdigit/str.islower rules yet can never authenticate.
NON_ASCII_DIGIT_ONLY = "tests-only-admin-secret-\u0663\u0663\u0663\u0663-zyxwvutsrq"
NON_ASCII_LOWERCASE_ONLY = "TESTS-ONLY-ADMIN-SECRET-\u00e9-9876543210-ZYXWVU"
WITH_WHITESPACE = "tests-only admin-secret-9876543210zyxwvu"
SYSTEM_PREFIXED = "phxs_tests-only-admin-secret-9876543210zyx"
USER_PREFIXED = "phxu_tests-only-admin-secret-9876543210zyx"
CUSTOM_PREFIXED = "acme_tests-only-admin-secret-9876543210zyx"
# 40 characters that pass every error rule but are one letter repeated plus a digit.
LOW_VARIETY = "a" * 39 + "1"


def ids(**secrets: Any) -> set[str]:
    return {m.id for m in run_checks() if m.id and m.id.startswith("phoenix_apikeys.")}


@pytest.fixture
def secrets(settings: Any) -> Any:
    def configure(secret: str | None = GOOD_SECRET, admin: str | None = None) -> None:
        settings.PHOENIX_SECRET = secret
        settings.PHOENIX_ADMIN_SECRET = admin

    return configure


def test_good_secrets_pass(secrets: Any) -> None:
    secrets(GOOD_SECRET, GOOD_ADMIN)
    assert ids() == set()


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (None, {"phoenix_apikeys.E001"}),
        ("", {"phoenix_apikeys.E001"}),
        ("abc123", {"phoenix_apikeys.E002"}),
        ("no-digits-in-this-phoenix-secret-at-all", {"phoenix_apikeys.E003"}),
        ("NO-LOWERCASE-IN-THIS-SECRET-0123456789", {"phoenix_apikeys.E004"}),
        ("has whitespace inside 0123456789 abcdef", {"phoenix_apikeys.E005"}),
        ("non-ascii-é-secret-0123456789-abcdefghij", {"phoenix_apikeys.E005"}),
    ],
)
def test_each_phoenix_secret_rule_alone(
    secrets: Any, secret: str | None, expected: set[str]
) -> None:
    secrets(secret)
    assert ids() == expected


@pytest.mark.parametrize(
    ("admin", "expected"),
    [
        ("short-1a", {"phoenix_apikeys.E012"}),
        ("no-digits-in-this-admin-secret-at-all-x", {"phoenix_apikeys.E013"}),
        ("NO-LOWERCASE-IN-THIS-ADMIN-SECRET-012345", {"phoenix_apikeys.E014"}),
        (GOOD_SECRET, {"phoenix_apikeys.E015"}),
    ],
)
def test_each_admin_secret_rule_alone(secrets: Any, admin: str, expected: set[str]) -> None:
    secrets(GOOD_SECRET, admin)
    assert ids() == expected


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (
            "non-ascii-digit-only-phoenix-secret-\u0663-abcdef",
            {"phoenix_apikeys.E003", "phoenix_apikeys.E005"},
        ),
        (
            "NON-ASCII-LOWERCASE-ONLY-\u00e9-0123456789-ABCDEF",
            {"phoenix_apikeys.E004", "phoenix_apikeys.E005"},
        ),
        ("control-character-\x01-phoenix-secret-0123456789", {"phoenix_apikeys.E005"}),
    ],
)
def test_phoenix_secret_classes_are_ascii(secrets: Any, secret: str, expected: set[str]) -> None:
    """'\u0663' is a digit and '\u00e9' lowercase to Python, but neither survives as ASCII."""
    secrets(secret)
    assert ids() == expected


def test_admin_secret_whose_only_digit_is_non_ascii(secrets: Any) -> None:
    secrets(GOOD_SECRET, NON_ASCII_DIGIT_ONLY)
    assert ids() == {"phoenix_apikeys.E013", "phoenix_apikeys.E016"}


def test_admin_secret_whose_only_lowercase_letter_is_non_ascii(secrets: Any) -> None:
    secrets(GOOD_SECRET, NON_ASCII_LOWERCASE_ONLY)
    assert ids() == {"phoenix_apikeys.E014", "phoenix_apikeys.E016"}


def test_admin_secret_with_whitespace(secrets: Any) -> None:
    secrets(GOOD_SECRET, WITH_WHITESPACE)
    assert ids() == {"phoenix_apikeys.E016"}


@pytest.mark.parametrize("admin", [SYSTEM_PREFIXED, USER_PREFIXED])
def test_admin_secret_starting_with_a_default_key_prefix(secrets: Any, admin: str) -> None:
    secrets(GOOD_SECRET, admin)
    assert ids() == {"phoenix_apikeys.E017"}


def test_admin_secret_starting_with_a_custom_key_prefix(settings: Any, secrets: Any) -> None:
    settings.PHOENIX_APIKEYS = {"USER_KEY_PREFIX": "acme_"}
    secrets(GOOD_SECRET, CUSTOM_PREFIXED)
    assert ids() == {"phoenix_apikeys.E017"}


def test_default_prefix_is_allowed_once_the_prefixes_are_custom(
    settings: Any, secrets: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"SYSTEM_KEY_PREFIX": "acmes_", "USER_KEY_PREFIX": "acmeu_"}
    secrets(GOOD_SECRET, SYSTEM_PREFIXED)
    assert ids() == set()


def test_admin_secret_equal_to_secret_key(settings: Any, secrets: Any) -> None:
    settings.SECRET_KEY = GOOD_ADMIN
    secrets(GOOD_SECRET, GOOD_ADMIN)
    assert ids() == {"phoenix_apikeys.E018"}


def test_every_admin_secret_rule_broken_at_once_is_reported_in_one_run(
    settings: Any, secrets: Any
) -> None:
    """Every admin rule but two that cannot break together with these: E011 needs PHOENIX_SECRET
    unset (E015 needs it equal), and E014 (no lowercase) cannot hold for a value starting with a
    valid key prefix (E017), as every valid prefix has a lowercase letter."""
    value = "phxs_ \u00e9"
    settings.SECRET_KEY = value
    secrets(value, value)
    admin_ids = {i for i in ids() if i.startswith("phoenix_apikeys.E01")}
    assert admin_ids == {
        "phoenix_apikeys.E012",
        "phoenix_apikeys.E013",
        "phoenix_apikeys.E015",
        "phoenix_apikeys.E016",
        "phoenix_apikeys.E017",
        "phoenix_apikeys.E018",
    }


def test_admin_secret_without_phoenix_secret(secrets: Any) -> None:
    secrets(None, GOOD_ADMIN)
    assert ids() == {"phoenix_apikeys.E001", "phoenix_apikeys.E011"}


def test_every_broken_rule_is_reported_in_one_run(secrets: Any) -> None:
    secrets("SHORT", "LOUD")
    assert ids() == {
        "phoenix_apikeys.E002",
        "phoenix_apikeys.E003",
        "phoenix_apikeys.E004",
        "phoenix_apikeys.E012",
        "phoenix_apikeys.E013",
        "phoenix_apikeys.E014",
    }


def test_messages_name_the_variable_and_carry_a_hint(secrets: Any) -> None:
    secrets("SHORT", "LOUD")
    messages = [m for m in run_checks() if m.id and m.id.startswith("phoenix_apikeys.")]
    for message in messages:
        assert message.msg.startswith(("PHOENIX_SECRET ", "PHOENIX_ADMIN_SECRET "))
        assert message.hint
        assert "SHORT" not in message.msg and "LOUD" not in message.msg  # never echo secrets


def test_secrets_come_from_the_environment_when_not_in_settings(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    del settings.PHOENIX_SECRET
    monkeypatch.setenv("PHOENIX_SECRET", "short")
    assert "phoenix_apikeys.E002" in ids()


def test_unknown_setting_is_an_error(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": None, "LAST_USED_INTERVL": 60}
    assert ids() == {"phoenix_apikeys.E021"}


@pytest.mark.parametrize(
    ("system", "user", "expected"),
    [
        ("PHXS_", "phxu_", {"phoenix_apikeys.E022"}),
        ("phx_", "phx_u_", {"phoenix_apikeys.E023"}),
        ("same_", "same_", {"phoenix_apikeys.E023"}),
    ],
)
def test_bad_prefixes_are_errors(settings: Any, system: str, user: str, expected: set[str]) -> None:
    settings.PHOENIX_APIKEYS = {"SYSTEM_KEY_PREFIX": system, "USER_KEY_PREFIX": user}
    assert ids() == expected


W003 = "phoenix_apikeys.W003"


def deploy_ids() -> set[str]:
    return {
        m.id
        for m in run_checks(include_deployment_checks=True)
        if m.id and m.id.startswith("phoenix_apikeys.W")
    }


@pytest.mark.django_db
def test_admin_secret_with_a_system_key_warns_on_deploy(secrets: Any) -> None:
    secrets(GOOD_SECRET, GOOD_ADMIN)
    assert deploy_ids() == set()
    SystemKeyFactory()
    assert deploy_ids() == {"phoenix_apikeys.W001"}


def test_phoenix_secret_equal_to_secret_key_warns_on_deploy(settings: Any, secrets: Any) -> None:
    secrets(GOOD_SECRET)
    settings.SECRET_KEY = GOOD_SECRET
    assert deploy_ids() == {"phoenix_apikeys.W002"}


@pytest.mark.django_db  # W001 looks for a system key whenever an admin secret is set
@pytest.mark.parametrize("variable", ["PHOENIX_SECRET", "PHOENIX_ADMIN_SECRET"])
def test_low_variety_secret_warns_on_deploy(settings: Any, secrets: Any, variable: str) -> None:
    secrets(GOOD_SECRET, GOOD_ADMIN)
    setattr(settings, variable, LOW_VARIETY)
    assert ids() == set()  # a warning on deploy only, never an error
    assert deploy_ids() == {"phoenix_apikeys.W003"}


@pytest.mark.django_db  # W001 looks for a system key whenever an admin secret is set
def test_low_variety_warning_names_the_variable_not_the_value(secrets: Any) -> None:
    secrets(GOOD_SECRET, LOW_VARIETY)
    [message] = [m for m in run_checks(include_deployment_checks=True) if m.id == W003]
    assert message.msg.startswith("PHOENIX_ADMIN_SECRET ")
    assert LOW_VARIETY not in message.msg
    assert "secrets.token_urlsafe(48)" in message.hint


@pytest.mark.django_db  # W001 looks for a system key whenever an admin secret is set
def test_generated_secrets_do_not_warn_on_deploy(secrets: Any) -> None:
    secrets(token_urlsafe(48), token_urlsafe(48))
    assert "phoenix_apikeys.W003" not in deploy_ids()


def test_deploy_checks_survive_an_empty_secret_key(settings: Any, secrets: Any) -> None:
    """Django raises on reading an empty SECRET_KEY; its own check reports that, ours must not."""
    secrets(GOOD_SECRET)
    settings.SECRET_KEY = ""
    assert deploy_ids() == set()


@pytest.mark.parametrize(
    "command", [["check"], ["migrate", "--no-input"], ["runserver", "--noreload", "127.0.0.1:0"]]
)
def test_management_commands_refuse_to_start_with_broken_secrets(command: list[str]) -> None:
    """Real processes, as an operator would run them: every broken rule named, non-zero exit."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_from_env",
        "PYTHONPATH": str(root),
    }
    env.update(PHOENIX_SECRET="short", PHOENIX_ADMIN_SECRET="short")
    result = subprocess.run(
        [sys.executable, "-m", "django", *command],
        env=env,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for check_id in ("E002", "E003", "E012", "E013"):
        assert f"phoenix_apikeys.{check_id}" in output


# The key cache and the system user ------------------------------------------------------------


def cache_ids(settings: Any, alias: str | None) -> set[str]:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": alias}
    return {message.id for message in run_checks() if message.id.startswith("phoenix_apikeys")}


def test_a_per_process_key_cache_is_an_error(settings: Any) -> None:
    assert "phoenix_apikeys.E024" in cache_ids(settings, "local")


@pytest.mark.parametrize("alias", [None, "apikeys"])
def test_no_cache_or_a_shared_one_passes(settings: Any, alias: str | None) -> None:
    assert "phoenix_apikeys.E024" not in cache_ids(settings, alias)


def system_user_ids() -> set[str]:
    return {message.id for message in run_checks(databases=["default"])}


@pytest.mark.django_db
def test_a_powerless_system_user_passes() -> None:
    from phoenix_apikeys.models import system_user

    system_user()
    assert not system_user_ids() & {"phoenix_apikeys.E031", "phoenix_apikeys.E032"}
    assert "phoenix_apikeys.E033" not in system_user_ids()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "check_id"),
    [
        ({"is_staff": True}, "phoenix_apikeys.E031"),
        ({"is_superuser": True}, "phoenix_apikeys.E031"),
        ({"password": "md5$salt$0123456789abcdef0123456789abcdef"}, "phoenix_apikeys.E032"),
        ({"username": "renamed"}, "phoenix_apikeys.E033"),
    ],
)
def test_a_system_user_that_gained_power_or_a_name_is_an_error(
    change: dict[str, Any], check_id: str
) -> None:
    from phoenix_apikeys.models import system_user

    user = system_user()
    type(user)._default_manager.filter(pk=user.pk).update(**change)
    assert check_id in system_user_ids()


@pytest.mark.django_db
def test_the_system_user_check_reads_the_database_only_when_asked() -> None:
    from phoenix_apikeys.models import system_user

    user = system_user()
    type(user)._default_manager.filter(pk=user.pk).update(is_superuser=True)
    assert "phoenix_apikeys.E031" not in {message.id for message in run_checks()}


@pytest.mark.parametrize(
    ("options", "warned"),
    [
        ({}, True),
        ({"SOCKET_TIMEOUT": 0.05}, True),
        ({"SOCKET_TIMEOUT": 0.05, "SOCKET_CONNECT_TIMEOUT": 0.05}, False),
        ({"socket_timeout": 0.05, "socket_connect_timeout": 0.05}, False),
    ],
)
def test_a_redis_cache_without_socket_timeouts_warns(
    settings: Any, options: dict[str, Any], warned: bool
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "OPTIONS": options,
        },
    }
    assert ("phoenix_apikeys.W004" in cache_ids(settings, "redis")) is warned
