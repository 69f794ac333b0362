"""`manage.py notify_expiring_keys`: one email per key per threshold, to the right people, once."""

from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.core.management import CommandError, call_command, execute_from_command_line
from django.db import connections
from django.test import Client
from django.utils import timezone

from phoenix_apikeys.management.notices import admin_addresses, nearest_crossed
from phoenix_apikeys.models import AbstractAPIKey, ExpiryNotice

from .factories import SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory
from .testapp.mail import FlakyMailBackend

pytestmark = pytest.mark.django_db

DAY, HOUR = 86400, 3600
ADMINS = [("Ops", "ops@example.com"), ("Security", "security@example.com")]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("notify_expiring_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def expiring_in(key: AbstractAPIKey, delta: timedelta) -> AbstractAPIKey:
    """Move the expiry (into the past too, which create_key refuses)."""
    key.expires_at = timezone.now() + delta
    type(key).objects.filter(pk=key.pk).update(expires_at=key.expires_at)
    return key


def notices() -> set[tuple[str, int, int]]:
    return set(ExpiryNotice.objects.values_list("kind", "key_pk", "threshold"))


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


@pytest.fixture(autouse=True)
def _admins(settings: Any) -> None:
    settings.ADMINS = ADMINS
    settings.DEFAULT_FROM_EMAIL = "keys@example.com"


def test_each_threshold_is_sent_once_however_often_the_command_runs() -> None:
    key = expiring_in(UserKeyFactory(name="notebook"), timedelta(days=5))
    for _ in range(3):
        run()
    assert subjects() == ['[phoenix_apikeys] API key "notebook" expires within 7 days']
    assert notices() == {("user", key.pk, 7 * DAY)}

    expiring_in(key, timedelta(hours=20))
    for _ in range(3):
        run()
    expiring_in(key, -timedelta(seconds=1))
    for _ in range(3):
        out, _ = run()
    assert subjects() == [
        '[phoenix_apikeys] API key "notebook" expires within 7 days',
        '[phoenix_apikeys] API key "notebook" expires within 1 day',
        '[phoenix_apikeys] API key "notebook" has expired',
    ]
    assert notices() == {("user", key.pk, t) for t in (7 * DAY, DAY, 0)}
    assert out.splitlines() == ["Sent 0 notices; skipped 0; failed 0."]


def test_only_the_nearest_crossed_threshold_is_sent() -> None:
    half_day = expiring_in(UserKeyFactory(name="half a day"), timedelta(hours=12))
    expired = expiring_in(UserKeyFactory(name="expired"), -timedelta(days=3))
    later = expiring_in(UserKeyFactory(name="later"), timedelta(days=8))
    never = UserKeyFactory(name="never")
    out, _ = run()
    assert sorted(subjects()) == [
        '[phoenix_apikeys] API key "expired" has expired',
        '[phoenix_apikeys] API key "half a day" expires within 1 day',
    ]
    assert notices() == {("user", half_day.pk, DAY), ("user", expired.pk, 0)}
    assert later.key_id not in out and never.key_id not in out
    assert out.splitlines()[-1] == "Sent 2 notices; skipped 0; failed 0."


def test_thresholds_come_from_the_setting(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"EXPIRY_NOTICE_THRESHOLDS": [timedelta(days=2), 3600]}
    soon = expiring_in(UserKeyFactory(name="soon"), timedelta(minutes=30))
    expiring_in(UserKeyFactory(name="expired"), -timedelta(minutes=1))  # 0 is not configured
    expiring_in(UserKeyFactory(name="in a week"), timedelta(days=6))
    run()
    assert subjects() == ['[phoenix_apikeys] API key "soon" expires within 1 hour']
    assert notices() == {("user", soon.pk, HOUR)}


def test_no_thresholds_send_nothing(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"EXPIRY_NOTICE_THRESHOLDS": []}
    expiring_in(UserKeyFactory(), -timedelta(minutes=1))
    out, _ = run()
    assert mail.outbox == [] and notices() == set()
    assert out == "Sent 0 notices; skipped 0; failed 0.\n"


def test_nearest_crossed_reads_the_expiry_against_now() -> None:
    now = timezone.now()
    among = (0, DAY, 7 * DAY)
    assert nearest_crossed(now + timedelta(days=7, seconds=1), now, among) is None
    assert nearest_crossed(now + timedelta(days=7), now, among) == 7 * DAY
    assert nearest_crossed(now + timedelta(days=1), now, among) == DAY
    assert nearest_crossed(now + timedelta(seconds=1), now, among) == DAY
    assert nearest_crossed(now, now, among) == 0
    assert nearest_crossed(now - timedelta(days=30), now, among) == 0
    assert nearest_crossed(now - timedelta(days=30), now, (DAY,)) is None


# Recipients -------------------------------------------------------------------------------------


def test_a_user_key_goes_to_its_owner_and_a_system_key_to_admins() -> None:
    user_key = expiring_in(
        UserKeyFactory(user=UserFactory(email="alice@example.com")), timedelta(hours=2)
    )
    system_key = expiring_in(SystemKeyFactory(), timedelta(hours=2))
    out, _ = run()
    sent = {message.subject.split('"')[1]: message for message in mail.outbox}
    assert len(mail.outbox) == 2
    assert sent[user_key.name].to == ["alice@example.com"]
    assert sent[system_key.name].to == ["ops@example.com", "security@example.com"]  # one email
    assert {message.from_email for message in mail.outbox} == {"keys@example.com"}
    assert f"Sent system key {system_key.key_id}" in out
    assert "to ops@example.com, security@example.com." in out
    assert f"Sent user key {user_key.key_id}" in out and "to alice@example.com." in out


def test_admins_may_be_plain_addresses(settings: Any) -> None:
    settings.ADMINS = ["ops@example.com", ("Security", "security@example.com"), ("Nobody", "")]
    assert admin_addresses() == ("ops@example.com", "security@example.com")


def test_a_system_key_is_skipped_while_admins_is_empty(settings: Any) -> None:
    settings.ADMINS = []
    key = expiring_in(SystemKeyFactory(), timedelta(hours=2))
    out, _ = run()
    assert mail.outbox == [] and notices() == set()
    assert f"Skipped system key {key.key_id}" in out and "ADMINS is empty." in out
    assert out.splitlines()[-1] == "Sent 0 notices; skipped 1; failed 0."
    settings.ADMINS = ADMINS
    run()
    assert [message.to for message in mail.outbox] == [["ops@example.com", "security@example.com"]]


def test_an_owner_without_an_email_address_is_skipped_and_named() -> None:
    silent = expiring_in(UserKeyFactory(user=UserFactory(email="")), timedelta(hours=2))
    spaces = expiring_in(UserKeyFactory(user=UserFactory(email="   ")), timedelta(hours=2))
    heard = expiring_in(UserKeyFactory(), timedelta(hours=2))
    out, _ = run()
    assert [message.to for message in mail.outbox] == [[heard.user.email]]
    assert notices() == {("user", heard.pk, DAY)}
    for key in (silent, spaces):
        assert f"Skipped user key {key.key_id}" in out
    assert out.count("its owner has no email address.") == 2
    assert out.splitlines()[-1] == "Sent 1 notice; skipped 2; failed 0."


# Dry run ----------------------------------------------------------------------------------------


def test_a_dry_run_lists_and_neither_sends_nor_records() -> None:
    user_key = expiring_in(UserKeyFactory(), timedelta(days=3))
    system_key = expiring_in(SystemKeyFactory(), -timedelta(hours=1))
    out, _ = run("--dry-run")
    assert mail.outbox == [] and notices() == set()
    assert f"Would send user key {user_key.key_id}" in out
    assert f"expires within 7 days, to {user_key.user.email}." in out
    assert f"Would send system key {system_key.key_id}" in out
    assert "has expired, to ops@example.com, security@example.com." in out
    assert out.splitlines()[-1] == "Would send 2 notices; skipped 0."
    run()
    assert len(mail.outbox) == 2  # what the dry run listed is still due


# Failures ---------------------------------------------------------------------------------------


@pytest.fixture
def flaky_mail(settings: Any) -> Any:
    settings.EMAIL_BACKEND = "tests.testapp.mail.FlakyMailBackend"
    FlakyMailBackend.refused = set()
    yield FlakyMailBackend
    FlakyMailBackend.refused = set()


def test_a_failed_email_records_nothing_fails_the_run_and_is_sent_next_time(
    flaky_mail: type[FlakyMailBackend],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = expiring_in(
        UserKeyFactory(user=UserFactory(email="bob@example.com")), timedelta(hours=1)
    )
    fine = expiring_in(UserKeyFactory(), timedelta(hours=2))  # after the refused one
    flaky_mail.refused = {"bob@example.com"}
    with pytest.raises(CommandError, match="1 notice could not be sent"):
        run()
    assert [message.to for message in mail.outbox] == [[fine.user.email]]  # the run went on
    assert notices() == {("user", fine.pk, DAY)}  # the failure's claim was rolled back

    capsys.readouterr()
    # As cron sees it; run_from_argv closes every connection, the test's own among them.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exit_status:
        execute_from_command_line(["manage.py", "notify_expiring_keys"])
    assert exit_status.value.code == 1
    output = capsys.readouterr()
    assert f"Failed user key {refused.key_id}" in output.err
    assert "SMTPServerDisconnected" in output.err
    assert "Sent 0 notices; skipped 0; failed 1." in output.out

    flaky_mail.refused = set()
    out, _ = run()
    assert [message.to for message in mail.outbox] == [[fine.user.email], ["bob@example.com"]]
    assert notices() == {("user", fine.pk, DAY), ("user", refused.pk, DAY)}
    assert out.splitlines()[-1] == "Sent 1 notice; skipped 0; failed 0."


# Concurrent runs --------------------------------------------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL=postgres… (concurrent connections)",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_send_each_notice_once_between_them(settings: Any) -> None:
    settings.EMAIL_BACKEND = "tests.testapp.mail.SlowMailBackend"
    keys = [expiring_in(UserKeyFactory(), timedelta(hours=2)) for _ in range(12)]
    runs = 3
    start = threading.Barrier(runs)

    def notify() -> str:
        start.wait()
        try:
            return run()[0]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(runs) as pool:
        outputs = list(pool.map(lambda _: notify(), range(runs)))
    assert sorted(message.to[0] for message in mail.outbox) == sorted(k.user.email for k in keys)
    assert notices() == {("user", key.pk, DAY) for key in keys}
    summaries = [output.splitlines()[-1] for output in outputs]
    sent = sum(int(summary.split()[1]) for summary in summaries)
    assert sent == len(keys)
    # The runs overlapped: some met a notice another run had claimed.
    assert sum(output.count("another run sent it.") for output in outputs) > 0


# Secrets ----------------------------------------------------------------------------------------


def test_a_notice_carries_metadata_and_never_the_key() -> None:
    keys = [
        expiring_in(UserKeyFactory(name="notebook"), timedelta(hours=3)),
        expiring_in(SystemKeyFactory(name="ci"), -timedelta(hours=3)),
    ]
    run()
    by_name = {message.subject.split('"')[1]: message for message in mail.outbox}
    assert set(by_name) == {"notebook", "ci"}
    for key in keys:
        message = by_name[key.name]
        text = message.message().as_string()
        assert key.plaintext not in text and key.plaintext[5:-6] not in text
        assert key.key_id in message.body
        assert key.prefixed_hint in message.body
        assert key.expires_at is not None
        expiry = key.expires_at.astimezone(dt_timezone.utc).isoformat(timespec="seconds")
        assert f"Expires:  {expiry}" in message.body and expiry.endswith("+00:00")
        assert message.content_subtype == "plain"
    assert "rotate it, or create a new key" in by_name["notebook"].body
    assert "create a new key" in by_name["ci"].body
    assert "rotate" not in by_name["ci"].body  # an expired key cannot be rotated


# Admin ------------------------------------------------------------------------------------------


def test_the_admin_lists_notices_read_only(client: Client) -> None:
    key = expiring_in(UserKeyFactory(), timedelta(hours=3))
    run()
    client.force_login(SuperuserFactory())
    listing = client.get("/admin/phoenix_apikeys/expirynotice/")
    assert listing.status_code == 200
    assert key.key_id in listing.content.decode()
    notice = ExpiryNotice.objects.get()
    assert client.get("/admin/phoenix_apikeys/expirynotice/add/").status_code == 403
    deleting = client.post(
        f"/admin/phoenix_apikeys/expirynotice/{notice.pk}/delete/", {"post": "yes"}
    )
    assert deleting.status_code == 403
    assert ExpiryNotice.objects.filter(pk=notice.pk).exists()


# The setting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["7d", 604800, [-1], [True], ["1 day"], [timedelta(days=-1)], None, [200 * 365 * DAY]]
)
def test_a_bad_threshold_setting_fails_the_check(settings: Any, value: Any) -> None:
    settings.PHOENIX_APIKEYS = {"EXPIRY_NOTICE_THRESHOLDS": value}
    errors = [m for m in run_checks() if m.id == "phoenix_apikeys.E026"]
    assert len(errors) == 1
    assert "EXPIRY_NOTICE_THRESHOLDS" in errors[0].msg
    assert (
        errors[0].hint
        == "It must be a list of timedeltas or seconds, each 0 or more (empty: no notices)."
    )


@pytest.mark.parametrize("value", [[], (0,), [timedelta(days=3), 3600, 0.5, 0]])
def test_good_threshold_settings_pass_the_check(settings: Any, value: Any) -> None:
    settings.PHOENIX_APIKEYS = {"EXPIRY_NOTICE_THRESHOLDS": value}
    assert "phoenix_apikeys.E026" not in {m.id for m in run_checks()}
