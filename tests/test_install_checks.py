"""Installation mistakes a new user makes, each reported where they will look: misspelled
PHOENIX_* settings, a setting hiding a secret set in the environment, and a forgotten migrate
(the check, and the log line of the 503 that follows)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError, connections
from django.test import Client

from phoenix_apikeys import outage
from phoenix_apikeys.checks.deployment import check_tables_migrated
from phoenix_apikeys.checks.settings import (
    check_secrets_hidden_by_settings,
    check_unknown_settings,
)
from phoenix_apikeys.models import UserKey

from .factories import UserKeyFactory

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def test_a_misspelled_setting_is_a_warning_naming_the_right_one(settings: Any) -> None:
    settings.PHOENIX_APIKEY = {"CACHE_ALIAS": "default"}
    [warning] = check_unknown_settings()
    assert warning.id == "phoenix_apikeys.W020"
    assert "PHOENIX_APIKEY:" in warning.msg
    assert "Did you mean PHOENIX_APIKEYS?" in warning.msg


def test_manage_py_check_shows_the_misspelled_setting(settings: Any) -> None:
    settings.PHOENIX_ADMIN_SECRETS = "x"
    errors = StringIO()
    call_command("check", stderr=errors, stdout=StringIO())
    assert "phoenix_apikeys.W020" in errors.getvalue()
    assert "PHOENIX_ADMIN_SECRET?" in errors.getvalue()


def test_the_known_settings_raise_nothing() -> None:
    assert check_unknown_settings() == []  # tests.settings sets all four


def test_a_none_setting_hiding_the_environment_is_a_warning(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PHOENIX_SECRET = None
    monkeypatch.setenv("PHOENIX_SECRET", "from-the-environment-0123456789abcdefgh")
    assert ids(check_secrets_hidden_by_settings()) == ["phoenix_apikeys.W021"]
    errors = StringIO()
    with pytest.raises(Exception, match="E001"):
        call_command("check", stderr=errors, stdout=StringIO())


def test_the_e001_hint_says_a_setting_hides_the_environment(settings: Any) -> None:
    settings.PHOENIX_SECRET = None
    from phoenix_apikeys.checks.settings import check_secrets

    [error] = [m for m in check_secrets() if m.id == "phoenix_apikeys.E001"]
    assert "even None or empty, hides the environment variable" in (error.hint or "")


def test_no_environment_value_no_warning(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PHOENIX_SECRET = None
    monkeypatch.delenv("PHOENIX_SECRET", raising=False)
    assert check_secrets_hidden_by_settings() == []


@pytest.mark.django_db
def test_migrated_tables_raise_nothing() -> None:
    assert check_tables_migrated(databases=["default"]) == []


@pytest.mark.django_db
def test_a_missing_table_is_a_database_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    introspection = connections["default"].introspection
    real = introspection.table_names
    monkeypatch.setattr(
        introspection,
        "table_names",
        lambda *args, **kwargs: [t for t in real() if t != UserKey._meta.db_table],
    )
    [warning] = check_tables_migrated(databases=["default"])
    assert warning.id == "phoenix_apikeys.W022"
    assert UserKey._meta.db_table in warning.msg
    assert "migrate" in (warning.hint or "")
    assert check_tables_migrated(databases=[]) == []  # only when asked, as Django's own


@pytest.mark.django_db
def test_the_503_log_line_says_run_migrate_when_a_table_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = UserKeyFactory()

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("no such table: phoenix_apikeys_userkey")

    monkeypatch.setattr(UserKey.objects, "find_by_digests", missing)
    monkeypatch.setattr(outage, "_database_down", False)
    with caplog.at_level(logging.ERROR, logger="phoenix_apikeys"):
        response = Client().get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 503
    assert "run `manage.py migrate`" in caplog.text


def test_a_database_that_is_down_gets_no_migrate_hint() -> None:
    assert outage.migrate_hint(OperationalError("connection refused")) == ""


def test_an_unmigrated_example_says_so_where_the_user_looks(tmp_path: Path) -> None:
    """As typed: `manage.py check --database default`, then a request, before `migrate`."""
    env = {
        **os.environ,
        "PHOENIX_SECRET": "example-unmigrated-test-secret-0123456789abc",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "CACHE_URL", "PHOENIX_ADMIN_SECRET"):
        env.pop(name, None)
    check = subprocess.run(
        [sys.executable, str(MANAGE), "check", "--database", "default"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "phoenix_apikeys.W022" in check.stderr + check.stdout
    request = (
        "from django.test import Client; from phoenix_apikeys.keys import generate_key; "
        "print(Client(HTTP_HOST='127.0.0.1').get('/api/hello/', "
        "HTTP_AUTHORIZATION='Bearer ' + generate_key('phxs_')).status_code)"
    )
    served = subprocess.run(
        [sys.executable, str(MANAGE), "shell", "-c", request],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert served.stdout.strip().endswith("503")
    assert "run `manage.py migrate`" in served.stderr
    created = subprocess.run(
        [sys.executable, str(MANAGE), "create_system_key", "--name", "before migrate"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 1
    assert "Traceback" not in created.stderr
    assert "run `manage.py migrate`" in created.stderr
