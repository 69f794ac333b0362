"""The user admin a project registers with register_user_admin() is extended whatever the order
of INSTALLED_APPS, and W010 says when it is not:
each case in a fresh interpreter, since apps are set up once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import django
django.setup()
from django.contrib import admin
from django.core.management import call_command
from phoenix_apikeys.admin.users import user_admin_warnings
print("not extended" if user_admin_warnings(admin.site) else "extended")
call_command("check")
"""


def run_with(tmp_path: Path, settings: str, probe: str = PROBE) -> subprocess.CompletedProcess[str]:
    (tmp_path / "probe_settings.py").write_text(f"from tests.settings import *\n{settings}\n")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "probe_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    return subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "order",
    [
        "",
        "INSTALLED_APPS.remove('phoenix_apikeys'); INSTALLED_APPS.insert(0, 'phoenix_apikeys')",
    ],
    ids=["admin first", "phoenix_apikeys first"],
)
def test_the_user_admin_is_extended_in_either_order(tmp_path: Path, order: str) -> None:
    result = run_with(tmp_path, order)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "extended"
    assert "W010" not in result.stdout + result.stderr


def test_a_user_admin_registered_after_start_up_is_reported(tmp_path: Path) -> None:
    # SimpleAdminConfig: no autodiscover, so no user admin is registered on the default site.
    apps = "INSTALLED_APPS = ['django.contrib.admin.apps.SimpleAdminConfig', *INSTALLED_APPS[1:]]"
    result = run_with(tmp_path, apps)
    assert result.stdout.splitlines()[0] == "not extended"
    assert "phoenix_apikeys.W010" in result.stdout + result.stderr


OWN_USER_ADMIN = """
import django
django.setup()
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import call_command


class PlainAdmin(admin.ModelAdmin):
    pass


# As a project's urls.py might, after start-up: the models django.contrib.auth.admin registers
# (Group here; the tests' user model is a custom one) are the project's to register.
admin.site.register(Group, PlainAdmin)
print("registered")
call_command("check")
"""


def test_a_project_registering_its_own_auth_admins_still_starts(tmp_path: Path) -> None:
    """The app never registers Django's auth admins itself (not even by importing them)."""
    (tmp_path / "probe_urls.py").write_text("urlpatterns = []\n")  # the tests' urls import it
    apps = "INSTALLED_APPS = ['django.contrib.admin.apps.SimpleAdminConfig', *INSTALLED_APPS[1:]]"
    result = run_with(tmp_path, f"{apps}\nROOT_URLCONF = 'probe_urls'", OWN_USER_ADMIN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "registered"
    assert "AlreadyRegistered" not in result.stderr
