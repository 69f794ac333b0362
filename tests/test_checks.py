"""System checks: each secret rule alone, all rules in one run, settings and deploy warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks

from .factories import SystemKeyFactory

GOOD_SECRET = "tests-only-phoenix-secret-0123456789abcdef"
GOOD_ADMIN = "tests-only-admin-secret-9876543210zyxwvu"


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
