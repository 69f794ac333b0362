"""The example project under uvicorn (ASGI), on PostgreSQL and Redis: a key works, a key revoked
by another process (a management command) is refused on the next request, a malformed key is
refused. Runs when the suite runs on PostgreSQL + Redis (DATABASE_URL, CACHE_URL), as .ci/run
does; the example gets a database of its own, dropped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.utils.crypto import get_random_string

from .test_example_site import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "")

pytestmark = pytest.mark.skipif(
    not (DATABASE_URL.startswith("postgres") and CACHE_URL.startswith("redis")),
    reason="needs DATABASE_URL=postgres… and CACHE_URL=redis…",
)


def status_of(url: str, credential: str, headers: dict[str, str] | None = None) -> int:
    headers = {"Authorization": f"Bearer {credential}", **(headers or {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture(scope="module")
def example_env() -> Iterator[dict[str, str]]:
    import psycopg

    name = f"wt_example_asgi_{get_random_string(8).lower()}"
    server = urlsplit(DATABASE_URL)
    with psycopg.connect(urlunsplit(server._replace(path="/postgres")), autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(server._replace(path=f"/{name}")),
        "CACHE_URL": CACHE_URL,
        "PHOENIX_SECRET": "example-asgi-test-secret-0123456789abcdefgh",
        "DJANGO_SECRET_KEY": "example-asgi-test-django-secret-key",
        "DJANGO_SETTINGS_MODULE": "example.settings",
        "PYTHONPATH": str(EXAMPLE),
    }
    env.pop("PHOENIX_ADMIN_SECRET", None)
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        yield env
    finally:
        with psycopg.connect(urlunsplit(server._replace(path="/postgres")), autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), *args],
        env=env, input=stdin, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture(scope="module")
def uvicorn_url(example_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "example.asgi:application", "--port", str(port),
         "--no-proxy-headers", "--log-level", "warning"],
        cwd=EXAMPLE, env=example_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _up(url):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"uvicorn did not start:\n{server.communicate(timeout=10)[1]}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/", timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def test_a_valid_key_is_served_under_uvicorn(uvicorn_url: str, example_env: dict[str, str]) -> None:
    key = manage(example_env, "create_system_key", "--name", "asgi")
    assert status_of(uvicorn_url + "/api/hello/", key) == 200
    assert status_of(uvicorn_url + "/api/hello/", key) == 200  # warm: from the cache
    assert status_of(uvicorn_url + "/api/ninja/hello", key) == 200


def test_a_key_revoked_elsewhere_is_refused_under_uvicorn(
    uvicorn_url: str, example_env: dict[str, str]
) -> None:
    key = manage(example_env, "create_system_key", "--name", "asgi-revoked")
    assert status_of(uvicorn_url + "/api/hello/", key) == 200
    manage(example_env, "revoke_api_key", "--stdin", stdin=key + "\n")
    assert status_of(uvicorn_url + "/api/hello/", key) == 401
    assert status_of(uvicorn_url + "/api/ninja/hello", key) == 401


def test_a_malformed_key_is_refused_under_uvicorn(uvicorn_url: str) -> None:
    assert status_of(uvicorn_url + "/api/hello/", "phxs_not-a-key") == 401
    assert status_of(uvicorn_url + "/api/ninja/hello", "phxs_not-a-key") == 401


def test_a_spoofed_forwarded_address_does_not_pass_allowed_networks_under_uvicorn(
    uvicorn_url: str, example_env: dict[str, str]
) -> None:
    only_inside = ("--allowed-network", "10.0.0.0/8")
    key = manage(example_env, "create_system_key", "--name", "asgi-networks", *only_inside)
    spoofed = {"X-Forwarded-For": "10.1.2.3"}
    assert status_of(uvicorn_url + "/api/hello/", key, spoofed) == 403
    assert status_of(uvicorn_url + "/api/ninja/hello", key, spoofed) == 403
