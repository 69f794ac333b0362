"""The admin in a real browser: Playwright driving Debian's Chromium against ``live_server``.

Skipped, with the reason in pytest's summary, when Chromium is not installed. Set
``PHOENIX_ADMIN_SCREENSHOTS=docs`` to also write the screenshots the README shows.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from phoenix_apikeys.models import SystemKey, UserKey

from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserKeyFactory

PASSWORD = "correct horse battery staple"
SYSTEM_ADD = "/admin/phoenix_apikeys/systemkey/add/"
SYSTEM_LIST = "/admin/phoenix_apikeys/systemkey/"
USER_ADD = "/admin/phoenix_apikeys/userkey/add/"
USER_LIST = "/admin/phoenix_apikeys/userkey/"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


CHROMIUM = find_chromium()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium not found: install Debian's chromium to run the admin browser tests",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playwright's sync API keeps an event loop in this thread; Django would refuse the ORM.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any, transactional_db: None) -> Iterator[Any]:
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1600, "height": 760},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    # No request may still be in the live server when the database is flushed after the test.
    page.wait_for_load_state("networkidle")
    context.close()


def log_in(page: Any, user: Any) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def create_key(page: Any, add_url: str, name: str, expires_in: str = "30") -> str:
    page.goto(add_url)
    page.fill("#id_name", name)
    page.select_option("#id_expires_in", expires_in)
    page.click("input[value='Create key']")
    return str(page.inner_text("#phoenix-api-key")).strip()


def whoami(live_server: Any, key: str) -> tuple[int, bytes]:
    """Call the API as a script would: no browser, no cookies, just the key."""
    request = urllib.request.Request(
        f"{live_server.url}/whoami/", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("PHOENIX_ADMIN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def some_keys_of_each_status(creator: Any) -> None:
    now = timezone.now()
    SystemKeyFactory(name="nightly export", created_by=creator)
    SystemKeyFactory(name="staging deploy", created_by=creator, expires_at=now + timedelta(days=3))
    old = SystemKeyFactory(
        name="old CI runner", created_by=None, expires_at=now + timedelta(days=1)
    )
    SystemKey.objects.filter(pk=old.pk).update(expires_at=now - timedelta(days=2))


def test_superuser_creates_uses_and_revokes_a_system_key(page: Any, live_server: Any) -> None:
    admin = SuperuserFactory(username="admin")
    some_keys_of_each_status(admin)
    log_in(page, admin)

    key = create_key(page, SYSTEM_ADD, "deploy bot")
    assert "will not be shown again" in page.inner_text("#content-main")
    assert "System API key" in page.inner_text("#phoenix-key-kind")
    screenshot(page, "admin-key-created")
    page.click("#phoenix-copy-key")
    page.wait_for_selector("#phoenix-copy-status:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == key
    assert whoami(live_server, key) == (
        200,
        b'{"username":"system","auth":"'
        + str(SystemKey.objects.get(name="deploy bot")).encode()
        + b'"}',
    )

    page.reload()  # re-sends the POST that created the key
    assert key not in page.content()
    assert "not shown again" in page.inner_text(".messagelist")
    assert SystemKey.objects.filter(name="deploy bot").count() == 1
    screenshot(page, "admin-changelist")

    page.click("text=deploy bot")
    page.click("a.deletelink")
    assert "revokes it" in page.inner_text("#content")
    page.click("input[type=submit]")
    assert not SystemKey.objects.filter(name="deploy bot").exists()
    assert whoami(live_server, key)[0] == 401


def test_back_and_forward_never_show_the_key_again(page: Any) -> None:
    log_in(page, SuperuserFactory())
    key = create_key(page, SYSTEM_ADD, "deploy bot")
    page.go_back()
    assert page.url.endswith(SYSTEM_ADD)
    assert key not in page.content()
    assert page.input_value("#id_name") == ""  # a fresh form, not the one already sent
    # no-store: the browser kept no copy of the created page to show again.
    with pytest.raises(PlaywrightError, match="ERR_CACHE_MISS"):
        page.go_forward()
    assert key not in page.inner_text("body")
    assert SystemKey.objects.count() == 1


def test_the_add_form_is_sent_once_however_often_it_is_submitted(page: Any) -> None:
    """A second POST in flight would create a key nobody sees: only the last page is shown."""
    log_in(page, SuperuserFactory())
    page.goto(SYSTEM_ADD)
    page.fill("#id_name", "impatient")
    sent = page.evaluate(
        """() => {
            const form = document.querySelector("#content-main form");
            let sent = 0;
            form.addEventListener("submit", (event) => {
                if (!event.defaultPrevented) sent++;
                event.preventDefault();  // count the submissions that would leave, send none
            });
            form.requestSubmit();
            form.requestSubmit();
            return sent;
        }"""
    )
    assert sent == 1


def test_staff_user_creates_uses_and_revokes_their_own_key(page: Any, live_server: Any) -> None:
    staff = StaffFactory(username="carol")
    log_in(page, staff)

    key = create_key(page, USER_ADD, "notebook", expires_in="7")
    assert "User API key" in page.inner_text("#phoenix-key-kind")
    status, body = whoami(live_server, key)
    assert status == 200 and b'"username":"carol"' in body

    page.reload()
    assert key not in page.content()
    assert UserKey.objects.filter(user=staff).count() == 1

    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "delete_selected")
    page.click("button[name=index]")
    assert "revokes it" in page.inner_text("#content")
    page.click("input[type=submit]")
    assert not UserKey.objects.exists()
    assert whoami(live_server, key)[0] == 401


def test_staff_user_cannot_see_another_users_keys(page: Any) -> None:
    other_key = UserKeyFactory(name="someone else's key")
    log_in(page, StaffFactory())
    page.goto(USER_LIST)
    assert "someone else" not in page.content()
    assert other_key.prefixed_hint not in page.content()
    page.goto(f"{USER_LIST}{other_key.pk}/change/")
    assert "someone else" not in page.inner_text("#content")
    assert "Perhaps it was deleted?" in page.inner_text(".messagelist")
