"""The example project's key commands as a user runs them: each says what it did once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"


def test_create_revoke_and_disable_print_each_line_once(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PHOENIX_SECRET": "example-commands-test-secret-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "CACHE_URL", "PHOENIX_ADMIN_SECRET"):
        env.pop(name, None)

    def manage(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(MANAGE), *args],
            env=env, input=stdin, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    manage("migrate", "--no-input", "-v", "0")
    created = manage("create_system_key", "--name", "once")
    assert created.stderr.count("Created system key") == 1, created.stderr
    revoked = manage("revoke_api_key", "--stdin", stdin=created.stdout)
    assert (revoked.stdout + revoked.stderr).count("Revoked system key") == 1, revoked
    fenced = manage("create_system_key", "--name", "fenced", "--allowed-network", "10.0.0.0/8",
                    "--rate-limit", "100/60", "--remaining-uses", "5")  # fmt: skip
    assert fenced.stderr.count("Restrictions: ") == 1, fenced.stderr
    [key] = json.loads(manage("list_api_keys", "--json").stdout)
    disabled = manage("disable_api_key", key["id"])
    assert (disabled.stdout + disabled.stderr).count("Disabled system key") == 1, disabled
    enabled = manage("disable_api_key", "--enable", key["id"])
    assert (enabled.stdout + enabled.stderr).count("Enabled system key") == 1, enabled
