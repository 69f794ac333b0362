"""Management commands: create, list, revoke, disable and prune keys.

The stdout contract of the creating commands and one run of every command go through a real
``python -m django`` subprocess on a file-based SQLite database; the rest use ``call_command``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from phoenix_apikeys.ids import key_id
from phoenix_apikeys.keys import KeyKind
from phoenix_apikeys.models import KeyEvent, SystemKey, UserKey, system_user
from phoenix_apikeys.restrictions import AddressNotAllowed
from phoenix_apikeys.verification import CredentialRejected, verify_credential

from .factories import SystemKeyFactory, UserFactory, UserKeyFactory

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_KEY = re.compile(r"phxs_[0-9A-Za-z]{38}")
USER_KEY = re.compile(r"phxu_[0-9A-Za-z]{38}")


def run(*args: str, stdin: str | None = None) -> tuple[str, str]:
    """call_command with captured stdout and stderr; ``stdin`` replaces sys.stdin."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out, stderr=err)
    finally:
        sys.stdin = saved
    return out.getvalue(), err.getvalue()


def expire(key: Any) -> Any:
    type(key).objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return key


# A real process: the stdout contract, and every command once.


@pytest.fixture(scope="module")
def project_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    database = tmp_path_factory.mktemp("commands") / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CACHE_URL", None)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True
    )
    return env


def manage(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_create_system_key_prints_the_key_alone_on_stdout(project_env: dict[str, str]) -> None:
    result = manage(project_env, "create_system_key", "--name", "ci", "--expires-in", "90d")
    assert result.returncode == 0, result.stderr
    assert SYSTEM_KEY.fullmatch(result.stdout.removesuffix("\n"))
    assert "Created system key" in result.stderr
    assert result.stdout.strip() not in result.stderr


def test_create_user_key_prints_the_key_alone_on_stdout(project_env: dict[str, str]) -> None:
    manage(project_env, "shell", "-c", SHELL_CREATE_ALICE)
    result = manage(project_env, "create_user_key", "--user", "alice", "--name", "notebook")
    assert result.returncode == 0, result.stderr
    assert USER_KEY.fullmatch(result.stdout.removesuffix("\n"))
    assert "owner alice" in result.stderr


SHELL_CREATE_ALICE = (
    "from django.contrib.auth import get_user_model; "
    "get_user_model().objects.get_or_create(username='alice')"
)


def test_bad_input_fails_with_a_message_and_an_empty_stdout(project_env: dict[str, str]) -> None:
    result = manage(project_env, "create_system_key", "--name", "ci", "--expires-in", "soon")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "--expires-in" in result.stderr


def test_the_lifecycle_commands_in_real_processes(project_env: dict[str, str]) -> None:
    """rotate_api_key prints the new key alone; notices, the event prune and key listing run."""
    made = manage(project_env, "create_system_key", "--name", "rotating", "--expires-in", "3d")
    listed = json.loads(manage(project_env, "list_api_keys", "--json").stdout)
    [old_id] = [row["id"] for row in listed if row["name"] == "rotating"]
    rotated = manage(project_env, "rotate_api_key", old_id, "--grace-period", "0")
    assert rotated.returncode == 0, rotated.stderr
    assert SYSTEM_KEY.fullmatch(rotated.stdout.removesuffix("\n"))
    assert rotated.stdout.strip() != made.stdout.strip()
    assert made.stdout.strip() not in rotated.stderr + rotated.stdout
    again = manage(project_env, "rotate_api_key", old_id)  # revoked by the rotation
    assert again.returncode != 0 and again.stdout == ""
    notices = manage(project_env, "notify_expiring_keys", "--dry-run")
    assert notices.returncode == 0, notices.stderr
    assert "rotating" in notices.stdout  # expires within 7 days: would be noticed
    pruned = manage(project_env, "prune_key_events", "--dry-run")
    assert pruned.returncode == 0 and "Would prune 0 key events" in pruned.stdout


def test_a_created_key_is_revoked_through_stdin(project_env: dict[str, str]) -> None:
    key = manage(project_env, "create_system_key", "--name", "leaked").stdout.strip()
    result = manage(project_env, "revoke_api_key", "--stdin", stdin=key + "\n")
    assert result.returncode == 0, result.stderr
    assert "Revoked system key" in result.stdout
    again = manage(project_env, "revoke_api_key", "--stdin", stdin=key)
    assert again.returncode != 0


def test_list_api_keys_runs_and_shows_no_secret(project_env: dict[str, str]) -> None:
    key = manage(project_env, "create_system_key", "--name", "listed").stdout.strip()
    result = manage(project_env, "list_api_keys", "--kind", "system")
    assert result.returncode == 0, result.stderr
    assert "listed" in result.stdout
    assert key not in result.stdout
    assert key[-4:] in result.stdout  # the hint


def test_a_restricted_key_is_made_disabled_and_enabled(project_env: dict[str, str]) -> None:
    made = manage(project_env, "create_system_key", "--name", "fenced", "--allowed-network",
                  "10.0.0.0/8", "--rate-limit", "100/60", "--remaining-uses", "5")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert SYSTEM_KEY.fullmatch(made.stdout.removesuffix("\n"))
    assert "Restrictions: allowed from 10.0.0.0/8" in made.stderr
    listed = json.loads(manage(project_env, "list_api_keys", "--json").stdout)
    [fenced] = [row for row in listed if row["name"] == "fenced"]
    assert (fenced["allowed_networks"], fenced["rate_limit"], fenced["remaining_uses"]) == (
        ["10.0.0.0/8"],
        {"requests": 100, "per": 60},
        5,
    )
    disabled = manage(project_env, "disable_api_key", fenced["id"])
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout.count("Disabled system key") == 1
    table = manage(project_env, "list_api_keys", "--kind", "system").stdout
    [line] = [line for line in table.splitlines() if fenced["id"] in line]
    assert line.split()[-2:] == ["disabled", "net=1,rate=100/60,uses=5"]
    enabled = manage(project_env, "disable_api_key", fenced["id"], "--enable")
    assert enabled.returncode == 0 and "Enabled system key" in enabled.stdout
    refused = manage(project_env, "create_system_key", "--name", "x", "--rate-limit", "10")
    assert refused.returncode != 0 and refused.stdout == ""
    assert "--rate-limit" in refused.stderr


def test_prune_api_keys_runs(project_env: dict[str, str]) -> None:
    result = manage(project_env, "prune_api_keys", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Would prune" in result.stdout


# create_system_key and create_user_key


@pytest.mark.django_db
def test_create_system_key_stores_the_key_it_prints() -> None:
    out, _ = run("create_system_key", "--name", "ci", "--description", "deploys")
    key = SystemKey.objects.get()
    assert (key.name, key.description, key.created_by) == ("ci", "deploys", None)
    assert out.strip().endswith(key.hint)


@pytest.mark.django_db
def test_expires_in_sets_the_expiry() -> None:
    run("create_system_key", "--name", "ci", "--expires-in", "90d")
    expires_at = SystemKey.objects.get().expires_at
    assert abs(expires_at - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "delta"), [("45s", 45), ("30m", 1800), ("12h", 43200)])
def test_expires_in_understands_every_unit(text: str, delta: int) -> None:
    run("create_system_key", "--name", "ci", "--expires-in", text)
    expires_at = SystemKey.objects.get().expires_at
    assert abs(expires_at - (timezone.now() + timedelta(seconds=delta))) < timedelta(seconds=30)


@pytest.mark.django_db
def test_expires_at_without_an_offset_is_utc() -> None:
    run("create_user_key", "--user", UserFactory().username, "--name", "x", "--expires-at",
        "2099-01-31T12:00:00")  # fmt: skip
    assert UserKey.objects.get().expires_at == datetime(2099, 1, 31, 12, tzinfo=dt_timezone.utc)


@pytest.mark.django_db
def test_expires_at_keeps_its_offset() -> None:
    run("create_system_key", "--name", "x", "--expires-at", "2099-01-31T12:00:00+02:00")
    assert SystemKey.objects.get().expires_at == datetime(2099, 1, 31, 10, tzinfo=dt_timezone.utc)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--name", "  "], "--name"),
        (["--name", "x" * 256], "--name"),
        (["--name", "x", "--expires-in", "90"], "--expires-in"),
        (["--name", "x", "--expires-in", "0d"], "--expires-in"),
        (["--name", "x", "--expires-in", "-5d"], "--expires-in"),
        (["--name", "x", "--expires-in", "999999999d"], "--expires-in"),
        (["--name", "x", "--expires-at", "tomorrow"], "--expires-at"),
        (["--name", "x", "--expires-at", "2099-13-01T00:00:00"], "--expires-at"),
        (["--name", "x", "--expires-at", "2000-01-01T00:00:00Z"], "--expires-at: Expiry must be"),
        (["--name", "x", "--expires-in", "99999999d"], "--expires-in"),
        (["--name", "x", "--expires-in", "1d", "--expires-at", "2099-01-01"], "--expires-at"),
    ],
)
def test_bad_input_is_a_command_error_naming_the_option(options: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        run("create_system_key", *options)
    assert not SystemKey.objects.exists()


@pytest.mark.django_db
def test_the_lifetime_policy_applies(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": timedelta(days=30)}
    with pytest.raises(CommandError, match="30 days"):
        run("create_system_key", "--name", "x", "--expires-in", "31d")


@pytest.mark.django_db
def test_create_user_key_belongs_to_the_named_user() -> None:
    user = UserFactory()
    out, _ = run("create_user_key", "--user", user.username, "--name", "notebook")
    assert UserKey.objects.get().user == user
    assert USER_KEY.fullmatch(out.strip())


@pytest.mark.django_db
def test_create_user_key_needs_an_existing_user() -> None:
    with pytest.raises(CommandError, match="no user 'ghost'"):
        run("create_user_key", "--user", "ghost", "--name", "x")


@pytest.mark.django_db
def test_the_system_user_gets_no_user_key() -> None:
    with pytest.raises(CommandError, match="--user: The system user owns no user keys"):
        run("create_user_key", "--user", system_user().get_username(), "--name", "x")


@pytest.mark.django_db
def test_an_inactive_user_gets_no_key() -> None:
    user = UserFactory(is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        run("create_user_key", "--user", user.username, "--name", "x")


# list_api_keys


@pytest.mark.django_db
def test_list_shows_both_kinds_with_ids_and_status() -> None:
    user_key, system_key = UserKeyFactory(), expire(SystemKeyFactory())
    out, _ = run("list_api_keys")
    assert key_id(KeyKind.USER, user_key.pk) in out
    assert key_id(KeyKind.SYSTEM, system_key.pk) in out
    assert "expired" in out
    assert user_key.plaintext not in out


@pytest.mark.django_db
def test_list_filters_by_kind() -> None:
    UserKeyFactory(name="mine")
    SystemKeyFactory(name="ci")
    out, _ = run("list_api_keys", "--kind", "system")
    assert "ci" in out
    assert "mine" not in out


@pytest.mark.django_db
def test_list_filters_by_user() -> None:
    key = UserKeyFactory(name="alices")
    UserKeyFactory(name="bobs")
    out, _ = run("list_api_keys", "--user", key.user.username)
    assert "alices" in out
    assert "bobs" not in out


@pytest.mark.django_db
def test_list_as_json() -> None:
    key = UserKeyFactory()
    out, _ = run("list_api_keys", "--json")
    assert json.loads(out) == [
        {
            "id": key_id(KeyKind.USER, key.pk),
            "kind": "user",
            "name": key.name,
            "owner": key.user.username,
            "hint": key.prefixed_hint,
            "created_at": key.created_at.isoformat(),
            "expires_at": None,
            "last_used_at": None,
            "scopes": [],
            "status": "active",
            "disabled": False,
            "allowed_networks": [],
            "rate_limit": None,
            "remaining_uses": None,
            "last_used_from": [],
        }
    ]


@pytest.mark.django_db
def test_list_keeps_control_characters_off_the_terminal() -> None:
    """New names cannot hold them (the model refuses), but a row written by other means can."""
    key = SystemKeyFactory(name="evil")
    SystemKey.objects.filter(pk=key.pk).update(name="evil\x1b[2Jname")
    out, _ = run("list_api_keys")
    assert "\x1b" not in out and "evil?[2Jname" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--name", "a\x01b"], "--name: Name must not contain control characters."),
        (
            ["--name", "x", "--description", "d" * 4097],
            "--description: Description must be at most",
        ),
        (["--name", "x", "--expires-in", ""], "--expires-in: expected a positive number"),
        (["--name", "x", "--expires-at", ""], "--expires-at: expected an ISO 8601"),
        (
            ["--name", "x", "--expires-at", "9999-12-31T23:59:59-14:00"],
            "--expires-at: Expiry must be before 9999.",
        ),
    ],
)
def test_every_surface_gets_the_same_limits(options: list[str], words: str) -> None:
    with pytest.raises(CommandError) as raised:
        run("create_system_key", *options)
    assert words in str(raised.value)
    assert not SystemKey.objects.exists()


@pytest.mark.django_db
def test_list_says_when_there_are_no_keys() -> None:
    assert run("list_api_keys")[0].strip() == "No API keys."


# revoke_api_key


@pytest.mark.django_db
@pytest.mark.parametrize("factory", [UserKeyFactory, SystemKeyFactory])
def test_revoke_by_id(factory: Any) -> None:
    key = factory()
    run("revoke_api_key", key_id(key.kind, key.pk))
    assert not type(key).objects.filter(pk=key.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("factory", [UserKeyFactory, SystemKeyFactory])
def test_revoke_by_plaintext_on_stdin(factory: Any) -> None:
    key = factory()
    run("revoke_api_key", "--stdin", stdin=f"  {key.plaintext}\n")
    assert not type(key).objects.filter(pk=key.pk).exists()


@pytest.mark.django_db
def test_revoke_by_plaintext_finds_keys_made_with_a_fallback_secret(settings: Any) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET_FALLBACKS = [settings.PHOENIX_SECRET]
    settings.PHOENIX_SECRET = "tests-only-rotated-secret-0123456789abcdef"
    run("revoke_api_key", "--stdin", stdin=key.plaintext)
    assert not UserKey.objects.exists()


@pytest.mark.django_db
def test_a_plaintext_key_as_an_argument_is_refused_and_not_echoed() -> None:
    key = UserKeyFactory()
    with pytest.raises(CommandError, match="--stdin") as error:
        run("revoke_api_key", key.plaintext)
    assert key.plaintext not in str(error.value)
    assert UserKey.objects.filter(pk=key.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("args", [[], ["--stdin", "VXNlckFwaUtleTox"]], ids=["neither", "both"])
def test_revoke_needs_exactly_one_of_id_and_stdin(args: list[str]) -> None:
    with pytest.raises(CommandError, match="either"):
        run("revoke_api_key", *args, stdin="")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["garbage", key_id(KeyKind.USER, 999)])
def test_revoking_an_unknown_id_fails(value: str) -> None:
    with pytest.raises(CommandError, match="No API key"):
        run("revoke_api_key", value)


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "not a key", "phxu_" + "A" * 38, "x" * 100_000])
def test_revoking_stdin_that_is_no_key_fails(text: str) -> None:
    UserKeyFactory()
    with pytest.raises(CommandError, match="not hold a key"):
        run("revoke_api_key", "--stdin", stdin=text)
    assert UserKey.objects.exists()


@pytest.mark.django_db
def test_revoking_an_unknown_plaintext_fails() -> None:
    key = UserKeyFactory()
    key.delete()
    with pytest.raises(CommandError, match="No stored key"):
        run("revoke_api_key", "--stdin", stdin=key.plaintext)


# prune_api_keys


@pytest.mark.django_db
def test_prune_deletes_only_expired_keys() -> None:
    expired_user, expired_system = expire(UserKeyFactory()), expire(SystemKeyFactory())
    later = UserKeyFactory(expires_at=timezone.now() + timedelta(days=1))
    never = SystemKeyFactory()
    out, _ = run("prune_api_keys")
    assert list(UserKey.objects.all()) == [later]
    assert list(SystemKey.objects.all()) == [never]
    assert key_id(KeyKind.USER, expired_user.pk) in out
    assert key_id(KeyKind.SYSTEM, expired_system.pk) in out
    assert "Pruned 2 expired keys." in out


@pytest.mark.django_db
def test_prune_dry_run_deletes_nothing() -> None:
    key = expire(UserKeyFactory())
    out, _ = run("prune_api_keys", "--dry-run")
    assert UserKey.objects.filter(pk=key.pk).exists()
    assert "Would prune 1 expired key." in out


@pytest.mark.django_db
def test_pruning_announces_each_revocation(django_capture_on_commit_callbacks: Any) -> None:
    from phoenix_apikeys.signals import key_revoked

    revoked: list[Any] = []

    def receiver(key: Any, **kwargs: Any) -> None:
        revoked.append(key.pk)

    key = expire(UserKeyFactory())
    key_revoked.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run("prune_api_keys")
    finally:
        key_revoked.disconnect(receiver)
    assert revoked == [key.pk]


# Restrictions at creation


@pytest.mark.django_db
def test_create_sets_the_restrictions_and_says_so() -> None:
    out, err = run("create_system_key", "--name", "ci", "--allowed-network", "10.0.0.0/8",
                   "--allowed-network", "2001:db8::/32", "--allowed-network", "192.0.2.7",
                   "--rate-limit", "100/60", "--remaining-uses", "5")  # fmt: skip
    key = SystemKey.objects.get()
    assert key.network_list == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]
    assert (key.rate_limit, key.remaining_uses) == ({"requests": 100, "per": 60}, 5)
    assert (
        "Restrictions: allowed from 10.0.0.0/8, 2001:db8::/32, 192.0.2.7/32; "
        "at most 100 requests per 60 s; 5 uses left." in err
    )
    assert out.strip() not in err  # the plaintext on stdout alone


@pytest.mark.django_db
def test_create_user_key_takes_the_restrictions_too() -> None:
    user = UserFactory()
    run("create_user_key", "--user", user.username, "--name", "n", "--rate-limit", "1/1",
        "--remaining-uses", "1")  # fmt: skip
    key = UserKey.objects.get()
    assert (key.user, key.rate_limit, key.remaining_uses) == (user, {"requests": 1, "per": 1}, 1)


@pytest.mark.django_db
def test_a_key_without_restrictions_says_nothing_of_them() -> None:
    _, err = run("create_system_key", "--name", "ci")
    assert "Restrictions" not in err
    key = SystemKey.objects.get()
    assert (key.network_list, key.rate_limit, key.remaining_uses) == ([], None, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--allowed-network", "bogus"], '--allowed-network: "bogus" is not an IPv4 or IPv6'),
        (["--allowed-network", "10.0.0.0/33"], "--allowed-network: "),
        (["--allowed-network", ""], "--allowed-network: "),
        (
            ["--allowed-network", "10.0.0.1/8"],
            '--allowed-network: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?',
        ),
        (["--rate-limit", "10"], "--rate-limit: expected requests/seconds, e.g. 100/60"),
        (["--rate-limit", "a/b"], "--rate-limit: expected requests/seconds"),
        (["--rate-limit", "10/1.5"], "--rate-limit: expected requests/seconds"),
        (["--rate-limit=-1/60"], "--rate-limit: expected requests/seconds"),
        (["--rate-limit", ""], "--rate-limit: expected requests/seconds"),
        (["--rate-limit", "0/60"], "--rate-limit: A rate limit's requests must be from 1 to"),
        (["--rate-limit", "10/0"], "--rate-limit: A rate limit's requests must be from 1 to"),
        (["--rate-limit", "10/86401"], "per from 1 to 86400 seconds"),
        (["--remaining-uses", "0"], "--remaining-uses: expected a whole number of uses, at least"),
        (["--remaining-uses", "-1"], "--remaining-uses: expected a whole number"),
        (["--remaining-uses", "five"], "--remaining-uses: expected a whole number"),
        (["--remaining-uses", "2.5"], "--remaining-uses: expected a whole number"),
        (["--remaining-uses", "9" * 25], "--remaining-uses: Ensure this value is less than"),
    ],
)
def test_bad_restrictions_are_refused_naming_the_option(options: list[str], words: str) -> None:
    with pytest.raises(CommandError) as raised:
        run("create_system_key", "--name", "x", *options)
    assert words in str(raised.value)
    assert not SystemKey.objects.exists()


@pytest.mark.django_db
def test_the_restrictions_a_command_sets_are_enforced() -> None:
    out, _ = run("create_system_key", "--name", "ci", "--allowed-network", "10.0.0.0/8",
                 "--remaining-uses", "1")  # fmt: skip
    plaintext = out.strip()
    with pytest.raises(AddressNotAllowed):
        verify_credential(plaintext, "192.0.2.1")
    verify_credential(plaintext, "10.1.2.3")  # the one use
    with pytest.raises(CredentialRejected):
        verify_credential(plaintext, "10.1.2.3")


# disable_api_key


def events(action: str) -> list[tuple[str, str]]:
    return [(e.key_id, e.actor_label) for e in KeyEvent.objects.filter(action=action)]


@pytest.mark.django_db
@pytest.mark.parametrize("factory", [UserKeyFactory, SystemKeyFactory])
def test_a_disabled_key_is_refused_and_an_enabled_one_accepted(factory: Any) -> None:
    key = factory()
    verify_credential(key.plaintext)  # accepted, and remembered where a cache is configured
    out, _ = run("disable_api_key", key.key_id)
    assert out.startswith(f"Disabled {key.kind.value} key {key.key_id} ({key.name!r}, ")
    with pytest.raises(CredentialRejected):
        verify_credential(key.plaintext)
    out, _ = run("disable_api_key", key.key_id, "--enable")
    assert out.startswith(f"Enabled {key.kind.value} key {key.key_id}")
    assert verify_credential(key.plaintext)
    assert events("disabled") == events("enabled") == [(key.key_id, "command")]


@pytest.mark.django_db
def test_a_disabled_key_is_refused_from_a_warm_cache(key_cache: str) -> None:
    key = UserKeyFactory()
    verify_credential(key.plaintext)
    run("disable_api_key", key.key_id)
    with pytest.raises(CredentialRejected):
        verify_credential(key.plaintext)


@pytest.mark.django_db
def test_disabling_twice_says_so_and_records_one_event() -> None:
    key = SystemKeyFactory()
    run("disable_api_key", key.key_id)
    out, _ = run("disable_api_key", key.key_id)
    description = f"system key {key.key_id} ({key.name!r}, {key.prefixed_hint})"
    assert out.strip() == f"Nothing changed: {description} was already disabled."
    assert len(events("disabled")) == 1


@pytest.mark.django_db
def test_enabling_a_key_that_is_not_disabled_changes_nothing() -> None:
    key = UserKeyFactory()
    out, _ = run("disable_api_key", key.key_id, "--enable")
    assert "was already enabled" in out
    assert not events("enabled")
    assert verify_credential(key.plaintext)


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["garbage", key_id(KeyKind.SYSTEM, 999)])
def test_disabling_an_unknown_id_fails(value: str) -> None:
    with pytest.raises(CommandError, match="No API key"):
        run("disable_api_key", value)


@pytest.mark.django_db
def test_disabling_by_plaintext_is_refused_and_not_echoed() -> None:
    key = UserKeyFactory()
    with pytest.raises(CommandError, match="list_api_keys") as error:
        run("disable_api_key", key.plaintext)
    assert key.plaintext not in str(error.value)
    assert verify_credential(key.plaintext)


@pytest.mark.django_db
def test_a_cache_that_cannot_be_told_changes_nothing(flaky: Any) -> None:
    key = UserKeyFactory()
    flaky.broken = True
    with pytest.raises(CommandError, match="nothing changed"):
        run("disable_api_key", key.key_id)
    flaky.broken = False
    assert not UserKey.objects.get(pk=key.pk).disabled
    assert not events("disabled")


@pytest.mark.django_db
def test_a_key_revoked_meanwhile_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from phoenix_apikeys.management.commands import disable_api_key

    key = SystemKeyFactory()
    monkeypatch.setattr(disable_api_key, "key_by_id", lambda *args: key)
    SystemKey.objects.revoke(key)
    with pytest.raises(CommandError, match="revoked meanwhile"):
        run("disable_api_key", key.key_id)


# list_api_keys and restrictions


@pytest.mark.django_db
def test_list_shows_disabled_and_the_restrictions_in_brief() -> None:
    SystemKeyFactory(name="fenced", allowed_networks=["10.0.0.0/8", "192.0.2.0/24"],
                     rate_limit={"requests": 10, "per": 60}, remaining_uses=3)  # fmt: skip
    plain = SystemKeyFactory(name="plain")
    SystemKey.objects.disable(plain)
    lines = run("list_api_keys")[0].splitlines()
    assert lines[0].split() == [
        "id", "kind", "name", "owner", "hint", "scopes", "created_at", "expires_at",
        "last_used_at", "status", "restrictions",
    ]  # fmt: skip
    rows = {line.split()[2]: line.split()[-2:] for line in lines[1:]}
    assert rows == {"fenced": ["active", "net=2,rate=10/60,uses=3"], "plain": ["disabled", "-"]}


@pytest.mark.django_db
def test_list_as_json_carries_the_restrictions() -> None:
    key = UserKeyFactory(allowed_networks=["2001:db8::/32"], remaining_uses=7)
    UserKey.objects.disable(key)
    [entry] = json.loads(run("list_api_keys", "--json")[0])
    assert {name: entry[name] for name in
            ("status", "disabled", "allowed_networks", "rate_limit", "remaining_uses")} == {
        "status": "disabled", "disabled": True, "allowed_networks": ["2001:db8::/32"],
        "rate_limit": None, "remaining_uses": 7,
    }  # fmt: skip


@pytest.mark.django_db
def test_a_rotation_says_which_restrictions_the_new_key_keeps() -> None:
    key = SystemKeyFactory(rate_limit={"requests": 5, "per": 1})
    _, err = run("rotate_api_key", key.key_id, "--grace-period", "0")
    assert "Restrictions: at most 5 requests per 1 s." in err
