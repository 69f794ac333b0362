"""The example project as a new user meets it: its own settings and URLconf, served by
``runserver`` in a subprocess (as ``manage.py start`` does) on a free port with a fresh SQLite
database. The home page links what there is to try; Swagger UI renders with every request to
any other host aborted, so the docs work without internet access.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .test_admin_browser import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(scope="module")
def example_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        **os.environ,
        "PHOENIX_SECRET": "example-site-test-secret-0123456789abcdefgh",
        "DJANGO_SECRET_KEY": "example-site-test-django-secret-key",
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('example') / 'db.sqlite3'}",
        "DJANGO_DEBUG": "true",  # runserver serves static files (the sidecar's) only with DEBUG
    }
    for name in ("DJANGO_SETTINGS_MODULE", "CACHE_URL", "PHOENIX_ADMIN_SECRET"):
        env.pop(name, None)
    subprocess.run(
        [sys.executable, str(MANAGE), "migrate", "--no-input", "-v", "0"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(MANAGE), "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(url + "/api/schema/")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    _, errors = server.communicate(timeout=10)
                    pytest.fail(f"the example project did not start:\n{errors}")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_home_page_links_what_there_is_to_try(example_url: str) -> None:
    status, body = get(example_url + "/")
    assert status == 200
    links = set(re.findall(r'href="([^"]+)"', body))
    assert {"/admin/", "/api/docs/", "/api/hello/", "/v1/user"} <= links
    for link in links:  # each one answers (the protected ones ask for credentials)
        assert get(example_url + link)[0] in {200, 401, 403}, link


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found: install Debian's chromium")
def test_swagger_ui_renders_offline(example_url: str) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    local = urlsplit(example_url).netloc
    aborted: list[str] = []

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.route("**/*", only_local)
            page.goto(example_url + "/api/docs/")
            # Rendered from the schema: the tag and operations of the key-management API.
            try:
                page.locator(".opblock-tag", has_text="API keys").first.wait_for()
            except PlaywrightError:
                pytest.fail(f"Swagger UI did not render; requests to other hosts: {aborted}")
            page.locator(".opblock-summary", has_text="Who am I").first.wait_for()
            page.locator(".opblock-summary-path", has_text="/api/hello/").first.wait_for()
            favicon = page.locator("link[rel=icon]").first.get_attribute("href") or ""
        finally:
            browser.close()
    assert aborted == []  # nothing was even asked of another host
    assert favicon.startswith("/static/")


def test_the_ninja_view_declares_the_bearer_scheme_and_asks_for_it(example_url: str) -> None:
    import json

    status, body = get(example_url + "/api/ninja/openapi.json")
    assert status == 200
    schema = json.loads(body)
    assert schema["components"]["securitySchemes"]["APIKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert schema["paths"]["/api/ninja/hello"]["get"]["security"] == [{"APIKeyAuth": []}]
    status, body = get(example_url + "/api/ninja/hello")
    assert (status, json.loads(body)) == (
        401,
        {"detail": "Authentication credentials were not provided."},
    )
