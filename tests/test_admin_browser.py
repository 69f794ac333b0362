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

from phoenix_apikeys.models import KeyEvent, SystemKey, UserKey, system_user

from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserKeyFactory

PASSWORD = "correct horse battery staple"
SYSTEM_ADD = "/admin/phoenix_apikeys/systemkey/add/"
SYSTEM_LIST = "/admin/phoenix_apikeys/systemkey/"
USER_ADD = "/admin/phoenix_apikeys/userkey/add/"
USER_LIST = "/admin/phoenix_apikeys/userkey/"
EVENT_LIST = "/admin/phoenix_apikeys/keyevent/"
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
def open_page(browser: Any, live_server: Any, transactional_db: None) -> Iterator[Any]:
    """``open_page(width, height, color_scheme, javascript)``: a page of a fresh browser
    context."""
    pages: list[Any] = []

    def open_page(
        width: int = 1600, height: int = 760, color_scheme: str = "light", javascript: bool = True
    ) -> Any:
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,
            java_script_enabled=javascript,
            permissions=["clipboard-read", "clipboard-write"],
        )
        context.set_default_timeout(10_000)
        pages.append(context.new_page())
        return pages[-1]

    yield open_page
    for page in pages:
        # No request may still be in the live server when the database is flushed after the test.
        page.wait_for_load_state("networkidle")
        page.context.close()


@pytest.fixture
def page(open_page: Any) -> Any:
    return open_page()


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
    page.wait_for_load_state("load")  # the page's scripts, the copy button's among them, ran
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


# What real changelists hold: names and usernames as long as people make them.
LONG_NAMES = [
    "Nightly export to the analytics database",
    "Staging deploy pipeline for the web shop",
    "Legacy CI runner on the old build server",
    "Grafana dashboards read-only data access",
    "Partner feed, paused while it is audited",
]
LONG_USERNAMES = [
    "alexandra.konstantinopoulou.op",
    "maximilian.vandenberghe.devops",
    "svc-data-platform-ingest-prod1",
    "j.rodriguez-fernandez.contract",
    "christopher.oyelaran-whitfield",
]


def keys_of_every_status(model: type[SystemKey] | type[UserKey]) -> None:
    """Active, expiring, expired, (user keys) owner-inactive and disabled keys, all used: a date
    is wider than "Never". A system key is owner-inactive only when every system key is."""
    assert {len(name) for name in LONG_NAMES} == {40}
    assert {len(username) for username in LONG_USERNAMES} == {30}
    now = timezone.now()
    people = [StaffFactory(username=username) for username in LONG_USERNAMES]
    expiries = [now + timedelta(days=90), now + timedelta(days=3), now + timedelta(days=1), None]
    expiries.append(now + timedelta(days=60))
    rows = zip(LONG_NAMES, expiries, people, strict=True)
    for hours, (name, expires_at, person) in enumerate(rows):
        if model is SystemKey:
            key: Any = SystemKeyFactory(name=name, created_by=person, expires_at=expires_at)
        else:
            key = UserKeyFactory(name=name, user=person, expires_at=expires_at)
        model.objects.filter(pk=key.pk).update(last_used_at=now - timedelta(hours=hours))
    model.objects.filter(name=LONG_NAMES[2]).update(expires_at=now - timedelta(days=2))
    model.objects.disable(model.objects.get(name=LONG_NAMES[4]))
    if model is UserKey:
        people[3].is_active = False
        people[3].save()


def collapse_nav_sidebar(page: Any) -> None:
    """Django's "«" button, remembered by the browser (the sidebar is open by default)."""
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")


def test_superuser_creates_uses_and_revokes_a_system_key(open_page: Any, live_server: Any) -> None:
    page = open_page(1280, 800)  # the README's screenshots: light theme, Django's nav sidebar open
    admin = SuperuserFactory(username="admin")
    keys_of_every_status(SystemKey)
    log_in(page, admin)

    key = create_key(page, SYSTEM_ADD, "deploy bot")
    assert "will not be shown again" in page.inner_text("#content-main")
    assert page.inner_text("#phoenix-key-kind") == f"System API key ({key.split('_')[0]}_…)"
    page.click("#phoenix-copy-key")
    page.wait_for_selector("#phoenix-copy-status:has-text('Copied')")
    screenshot(page, "admin-key-created")
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


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("add_url", [SYSTEM_ADD, USER_ADD], ids=["system", "user"])
def test_the_expiry_date_is_asked_for_only_on_a_date(
    open_page: Any, add_url: str, javascript: bool
) -> None:
    """A preset hides the date field (CSS, so without JavaScript too); "On a date…" shows it."""
    page = open_page(1280, 800, javascript=javascript)
    log_in(page, SuperuserFactory())
    page.goto(add_url)
    date_row = page.locator(".form-row.field-expires_on")
    assert page.input_value("#id_expires_in") == "30"
    assert not date_row.is_visible()
    page.select_option("#id_expires_in", "date")
    assert date_row.is_visible()
    page.select_option("#id_expires_in", "7")
    assert not date_row.is_visible()

    day = (timezone.localdate() + timedelta(days=12)).isoformat()
    page.fill("#id_name", "dated")
    page.select_option("#id_expires_in", "date")
    page.fill("#id_expires_on", day)
    page.click("input[value='Create key']")
    page.wait_for_selector("#phoenix-api-key")
    model = SystemKey if add_url == SYSTEM_ADD else UserKey
    expires_at = model.objects.get(name="dated").expires_at
    assert timezone.localtime(expires_at).date().isoformat() == day


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_date_left_behind_a_preset(open_page: Any, javascript: bool) -> None:
    """A date typed, then a preset chosen: with JavaScript the hidden date is not sent (the
    preset counts); without, the server refuses the pair and shows the date again."""
    page = open_page(1280, 800, javascript=javascript)
    log_in(page, SuperuserFactory())
    page.goto(SYSTEM_ADD)
    page.fill("#id_name", "changed my mind")
    page.select_option("#id_expires_in", "date")
    page.fill("#id_expires_on", (timezone.localdate() + timedelta(days=12)).isoformat())
    page.select_option("#id_expires_in", "7")
    assert not page.locator(".form-row.field-expires_on").is_visible()
    page.click("input[value='Create key']")
    if javascript:
        page.wait_for_selector("#phoenix-api-key")
        key = SystemKey.objects.get(name="changed my mind")
        assert key.expires_at is not None
        assert abs(key.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=5)
    else:
        page.wait_for_load_state("load")
        assert page.locator(".form-row.field-expires_on").is_visible()  # the date sent back
        refusal = page.locator(".form-row.field-expires_in .errorlist").inner_text()
        assert refusal == "Choose “On a date…” to use a date, or clear the date."
        assert not SystemKey.objects.filter(name="changed my mind").exists()


# Readable at ordinary window sizes, light and dark -------------------------------------------

# Width, height and Django's nav sidebar: open (its default) or collapsed.
WINDOWS = [(1280, 800, "open"), (1280, 800, "collapsed"), (1600, 900, "open")]
THEMES = ["light", "dark"]

# Computed colours as [r, g, b(, a)], an element's effective background (the first ancestor
# with one, else the white canvas) and the WCAG 2 contrast ratio of its text against it.
COLOURS = """
    const rgba = (css) => css.match(/[\\d.]+/g).map(Number);
    const background = (element) => {
        for (let node = element; node; node = node.parentElement) {
            const colour = rgba(getComputedStyle(node).backgroundColor);
            if (colour.length < 4 || colour[3] > 0) return colour.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const luminance = (colour) => {
        const [r, g, b] = colour.map((value) => {
            const c = value / 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (element) => {
        const text = luminance(rgba(getComputedStyle(element).color).slice(0, 3));
        const ground = luminance(background(element));
        return (Math.max(text, ground) + 0.05) / (Math.min(text, ground) + 0.05);
    };
"""
CONTRAST = f"(element) => {{ {COLOURS} return contrast(element); }}"
BACKGROUND = f"(element) => {{ {COLOURS} return background(element); }}"

CHANGELIST_LAYOUT = """() => {
    const results = document.querySelector("#changelist-form .results");
    const shown = (cell) => getComputedStyle(cell).display !== "none";
    return {
        // A cell whose content is wider than its column is cut off.
        clipped: [...document.querySelectorAll("#result_list td, #result_list th")]
            .filter((cell) => shown(cell) && cell.scrollWidth > cell.clientWidth + 1)
            .map((cell) => `${cell.className}: ${cell.textContent.trim()}`),
        // A table wider than its box scrolls inside it: the last columns are out of sight.
        table_overflow: Math.max(0, results.scrollWidth - results.clientWidth),
        page_overflow: Math.max(0, document.documentElement.scrollWidth - window.innerWidth),
        // A column header that is shown but (partly) outside the window or the table's box.
        headers_outside: [...document.querySelectorAll("#result_list thead th")]
            .filter((cell) => shown(cell))
            .filter((cell) => {
                const box = cell.getBoundingClientRect();
                const right = Math.min(window.innerWidth, results.getBoundingClientRect().right);
                return box.width < 1 || box.left < -0.5 || box.right > right + 0.5;
            })
            .map((cell) => cell.className),
    };
}"""
FITS = {"clipped": [], "table_overflow": 0, "page_overflow": 0, "headers_outside": []}

# The columns a row shows, by the class Django gives their header ("column-name").
SHOWN_COLUMNS = """() => [...document.querySelectorAll("#result_list thead th")]
    .filter((cell) => getComputedStyle(cell).display !== "none")
    .map((cell) => [...cell.classList].find((name) => name.startsWith("column-")))
    .filter(Boolean)
    .map((name) => name.slice("column-".length))"""

# The lines each cell of a column takes: its text's line boxes, by their distinct tops.
LINES = """(selector) => [...document.querySelectorAll(selector)].map((cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return new Set([...range.getClientRects()].map((box) => Math.round(box.top))).size;
})"""


def assert_theme(page: Any, theme: str) -> None:
    """The admin follows the browser's colour scheme (Django's theme toggle is on "auto")."""
    body = page.locator("body").evaluate(BACKGROUND)
    assert (body == [18, 18, 18]) == (theme == "dark"), body


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize(("width", "height", "sidebar"), WINDOWS)
@pytest.mark.parametrize("model", [SystemKey, UserKey], ids=["system", "user"])
def test_the_key_lists_fit_the_window(
    open_page: Any, model: type[Any], width: int, height: int, sidebar: str, theme: str
) -> None:
    """Every column in sight and none cut off, the page no wider than the window, with the nav
    sidebar open or collapsed (see ``collapse_nav_sidebar``)."""
    keys_of_every_status(model)
    page = open_page(width, height, theme)
    log_in(page, SuperuserFactory(username="admin"))  # sees every user's keys
    if sidebar == "collapsed":
        collapse_nav_sidebar(page)
    page.goto(SYSTEM_LIST if model is SystemKey else USER_LIST)
    assert_theme(page, theme)
    assert page.locator("#nav-sidebar").is_visible() == (sidebar == "open")
    expected = {"active", "expiring", "expired", "owner-inactive", "disabled"}
    if model is SystemKey:
        expected.remove("owner-inactive")
    badges = page.locator("#result_list .phoenix-key-status")
    assert {badge.get_attribute("class").split()[-1] for badge in badges.all()} == expected
    owner = "created_by" if model is SystemKey else "owner"
    columns = ["name", "key_hint", "created", "expires", "last_used", "key_status", owner]
    assert page.evaluate(SHOWN_COLUMNS) == columns
    assert page.evaluate(CHANGELIST_LAYOUT) == FITS
    for badge in badges.all():
        assert badge.evaluate(CONTRAST) >= 4.5, badge.inner_text()


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("model", [SystemKey, UserKey], ids=["system", "user"])
def test_the_key_lists_show_what_matters_on_a_phone(
    open_page: Any, model: type[Any], theme: str
) -> None:
    """390 px: name, hint, expiry and status in sight; the rest is on each key's page."""
    keys_of_every_status(model)
    page = open_page(390, 844, theme)
    log_in(page, SuperuserFactory(username="admin"))
    page.goto(SYSTEM_LIST if model is SystemKey else USER_LIST)
    assert_theme(page, theme)
    assert page.evaluate(SHOWN_COLUMNS) == ["name", "key_hint", "expires", "key_status"]
    assert page.evaluate(CHANGELIST_LAYOUT) == FITS
    for badge in page.locator("#result_list .phoenix-key-status").all():
        assert badge.is_visible()
        assert badge.evaluate(CONTRAST) >= 4.5, badge.inner_text()


def key_events() -> None:
    """Events of keys with long names, by people with long usernames, from IPv4 and IPv6, with
    the longest action labels."""
    keys_of_every_status(UserKey)
    for key in UserKey.objects.select_related("user"):
        label = key.user.get_username()
        KeyEvent.objects.record("created", key, label=label, source="2001:db8:85a3::8a2e:370:7334")
        KeyEvent.objects.record("rotated", key, label="admin secret", source="203.0.113.17")
    key = UserKey.objects.get(name=LONG_NAMES[0])
    for action in ("restricted", "disabled", "enabled"):  # the longest action labels
        KeyEvent.objects.record(action, key, label="admin", source="203.0.113.17")
    KeyEvent.objects.record("admin_secret_used", label="admin secret", source="203.0.113.17")


@pytest.mark.parametrize(("width", "height", "sidebar"), WINDOWS)
def test_the_key_events_fit_the_window(
    open_page: Any, width: int, height: int, sidebar: str
) -> None:
    key_events()
    page = open_page(width, height)
    log_in(page, SuperuserFactory(username="admin"))
    if sidebar == "collapsed":
        collapse_nav_sidebar(page)
    page.goto(EVENT_LIST)
    columns = ["at", "action", "kind", "key_id", "key_name", "actor_label", "source"]
    assert page.evaluate(SHOWN_COLUMNS) == columns
    assert page.evaluate(CHANGELIST_LAYOUT) == FITS
    # A 40-character key name takes two lines at most.
    assert max(page.evaluate(LINES, "#result_list td.field-key_name")) <= 2


@pytest.mark.parametrize("theme", THEMES)
def test_the_copied_confirmation_is_readable(open_page: Any, theme: str) -> None:
    page = open_page(1280, 800, theme)
    log_in(page, SuperuserFactory())
    create_key(page, SYSTEM_ADD, "deploy bot")
    assert_theme(page, theme)
    page.click("#phoenix-copy-key")
    # "Copied", or where the browser denies the clipboard the select-and-copy fallback's words:
    # the same element, the same colours.
    status = page.wait_for_selector("#phoenix-copy-status:not(:empty)")
    assert status.inner_text() in ("Copied", "Selected: press Ctrl+C (⌘C) to copy")
    assert status.evaluate(CONTRAST) >= 4.5  # WCAG AA, normal text


def test_the_system_users_page_has_a_plain_notice_and_no_key_list(page: Any) -> None:
    owner = UserKeyFactory().user
    log_in(page, SuperuserFactory())
    page.goto(f"/admin/testapp/user/{owner.pk}/change/")
    assert page.locator(".inline-group", has_text="API keys").count() == 1

    page.goto(f"/admin/testapp/user/{system_user().pk}/change/")
    assert page.locator(".inline-group", has_text="API keys").count() == 0
    note = page.get_by_text("This is the system user")
    assert note.is_visible()
    assert page.locator(".messagelist").count() == 0  # no message, least of all a green one
    success = page.evaluate(
        """() => {
            const probe = document.body.appendChild(document.createElement("div"));
            probe.style.background = "var(--message-success-bg)";
            const colour = getComputedStyle(probe).backgroundColor;
            probe.remove();
            return colour.match(/[\\d.]+/g).map(Number).slice(0, 3);
        }"""
    )
    assert note.evaluate(BACKGROUND) != success
    assert note.evaluate(BACKGROUND) == page.locator("body").evaluate(BACKGROUND)


def test_staff_user_rotates_their_own_key_from_the_list(page: Any, live_server: Any) -> None:
    staff = StaffFactory()
    old = UserKeyFactory(user=staff, name="notebook")
    log_in(page, staff)
    page.goto(USER_LIST)
    page.check(f"input.action-select[value='{old.pk}']")
    page.select_option("select[name=action]", "rotate_selected")
    page.click("button[name=index]")
    new_key = str(page.inner_text("#phoenix-api-key")).strip()
    assert new_key.startswith("phxu_") and new_key != old.plaintext
    assert old.key_id in page.inner_text("#phoenix-key-replaces")
    assert "keeps working until" in page.inner_text("#phoenix-key-grace")
    assert whoami(live_server, new_key)[0] == 200
    assert whoami(live_server, old.plaintext)[0] == 200  # until its grace period ends
    assert UserKey.objects.filter(user=staff, name="notebook").count() == 2


def test_superuser_creates_a_restricted_key_and_disables_it_from_its_page(
    open_page: Any, live_server: Any
) -> None:
    page = open_page(1280, 800)
    log_in(page, SuperuserFactory())
    page.goto(SYSTEM_ADD)
    page.fill("#id_name", "partner feed")
    page.fill("#id_networks", "127.0.0.0/8\n2001:db8::/32, 192.0.2.7")
    page.fill("#id_rate_limit_0", "100")
    page.fill("#id_rate_limit_1", "60")
    page.fill("#id_uses", "10")
    screenshot(page, "admin-key-restrictions")
    page.click("input[value='Create key']")
    key = str(page.inner_text("#phoenix-api-key")).strip()
    assert whoami(live_server, key)[0] == 200  # from 127.0.0.1: one use spent, its address kept
    stored = SystemKey.objects.get(name="partner feed")
    assert stored.network_list == ["127.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]
    assert (stored.rate_limit, stored.remaining_uses) == ({"requests": 100, "per": 60}, 9)

    page.goto(f"{SYSTEM_LIST}{stored.pk}/change/")
    section = page.locator("fieldset", has_text="Restrictions").inner_text()
    for text in ("127.0.0.0/8", "192.0.2.7/32", "100 requests per 1 minute.", "9 uses left."):
        assert text in section
    assert "127.0.0.1" in page.locator(".field-used_from").inner_text()
    page.click("form.phoenix-key-state button")
    assert "1 key disabled" in page.inner_text(".messagelist")
    assert "This key is disabled" in page.inner_text("#content-main")
    assert page.inner_text(".field-key_status .readonly") == "disabled"
    screenshot(page, "admin-key-disabled")
    assert whoami(live_server, key)[0] == 401
    assert SystemKey.objects.get(pk=stored.pk).remaining_uses == 9  # a refused key spends none

    page.click("form.phoenix-key-state button")  # now "Enable key"
    assert "1 key enabled" in page.inner_text(".messagelist")
    assert whoami(live_server, key)[0] == 200


@pytest.mark.parametrize("width", [390, 1280])
def test_the_add_forms_restrictions_fit_the_window(open_page: Any, width: int) -> None:
    page = open_page(width, 844)
    log_in(page, SuperuserFactory())
    page.goto(SYSTEM_ADD)
    page.fill("#id_rate_limit_0", "100")  # half a rate limit: the form comes back with an error
    page.click("input[value='Create key']")
    error = page.locator(".form-row.field-rate_limit .errorlist").inner_text()
    assert error == "Give both the number of requests and the seconds, or neither."
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    for field in ("#id_rate_limit_0", "#id_rate_limit_1", "#id_uses", "#id_networks"):
        box = page.locator(field).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
