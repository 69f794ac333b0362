"""What the key-management commands share: expiry and restriction options, errors, and the
stdout contract.

A creating command prints the plaintext key alone on stdout and everything else on stderr, so
``KEY=$(python manage.py create_system_key --name ci)`` captures exactly the key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, ngettext

from .. import audit
from ..conf import phoenix_settings
from ..keys import KeyKind
from ..models import AbstractAPIKey, MissingSecretError, find_key_by_id
from ..outage import migrate_hint

# At most 9 digits: 999999999d is timedelta's largest number of days, so no duration overflows.
DURATION = re.compile(r"([1-9][0-9]{0,8})([smhd])")
RATE_LIMIT = re.compile(r"([0-9]{1,30})/([0-9]{1,30})")
USES = re.compile(r"[0-9]{1,30}")  # the model judges the range
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# The options a model field's error is about, so the message names what the operator typed.
OPTIONS = {
    "name": "--name",
    "description": "--description",
    "user": "--user",
    "scopes": "--scope",
    "allowed_networks": "--allowed-network",
    "rate_limit": "--rate-limit",
    "rate_limit_requests": "--rate-limit",
    "rate_limit_per": "--rate-limit",
    "remaining_uses": "--remaining-uses",
}


def parse_duration(text: str, option: str = "--expires-in") -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``45s``; errors name ``option``."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise CommandError(
            gettext(
                "%(option)s: expected a positive number and a unit (s, m, h or d), e.g. 90d; "
                "got %(text)s."
            )
            % {"option": option, "text": repr(text)}
        )
    number, unit = match.groups()
    return timedelta(**{UNITS[unit]: int(number)})


def parse_expires_at(text: str) -> datetime:
    """An ISO 8601 date and time; without a UTC offset it is read as UTC."""
    try:
        value = parse_datetime(text.strip())
    except ValueError:
        value = None
    if value is None:
        raise CommandError(
            gettext(
                "--expires-at: expected an ISO 8601 date and time, e.g. 2030-01-31T12:00:00Z; "
                "got %(text)s."
            )
            % {"text": repr(text)}
        )
    return value.replace(tzinfo=dt_timezone.utc) if timezone.is_naive(value) else value


def expiry(options: dict[str, Any]) -> datetime | None:
    if options.get("expires_in") is not None:  # "" (an unset variable) is an error, not never
        try:
            return timezone.now() + parse_duration(options["expires_in"])
        except OverflowError:
            raise CommandError(gettext("--expires-in: too long.")) from None
    if options.get("expires_at") is not None:
        return parse_expires_at(options["expires_at"])
    return None


def add_expiry_arguments(parser: CommandParser, expires_in_help: str) -> None:
    """--expires-in or --expires-at, not both: what ``expiry`` reads."""
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--expires-in", help=expires_in_help)
    when.add_argument("--expires-at", help=gettext("ISO 8601 expiry; without an offset it is UTC"))


def parse_rate_limit(text: str) -> dict[str, int]:
    """``100/60``: at most 100 requests per 60 seconds; the model judges the numbers."""
    match = RATE_LIMIT.fullmatch(text.strip())
    if match is None:
        raise CommandError(
            gettext(
                "--rate-limit: expected requests/seconds, e.g. 100/60 for 100 requests a minute; "
                "got %(text)s."
            )
            % {"text": repr(text)}
        )
    requests, per = match.groups()
    return {"requests": int(requests), "per": int(per)}


def parse_remaining_uses(text: str) -> int:
    """A whole number, at least 1: a key made with no use left could never be used."""
    match = USES.fullmatch(text.strip())
    if match is None or int(text) < 1:
        raise CommandError(
            gettext(
                "--remaining-uses: expected a whole number of uses, at least 1 (a key with 0 "
                "could never be used); got %(text)s."
            )
            % {"text": repr(text)}
        )
    return int(text)


def restriction_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The restrictions the options set, as ``create_key`` takes them; none when none given."""
    fields: dict[str, Any] = {}
    if options.get("allowed_networks"):
        fields["allowed_networks"] = options["allowed_networks"]
    if options.get("rate_limit") is not None:
        fields["rate_limit"] = parse_rate_limit(options["rate_limit"])
    if options.get("remaining_uses") is not None:
        fields["remaining_uses"] = parse_remaining_uses(options["remaining_uses"])
    return fields


def option_errors(
    error: ValidationError, options: dict[str, Any], renamed: dict[str, str] | None = None
) -> str:
    """The model's errors, each under the option the operator typed (or as ``renamed`` says)."""
    expiry_option = "--expires-at" if options.get("expires_at") is not None else "--expires-in"
    names = {**OPTIONS, "expires_at": expiry_option, **(renamed or {})}
    return "; ".join(
        " ".join(messages)
        if field == NON_FIELD_ERRORS
        else f"{names.get(field, field)}: {' '.join(messages)}"
        for field, messages in error.message_dict.items()
    )


def describe_key(key: AbstractAPIKey) -> str:
    owner = (
        ""
        if key.kind is KeyKind.SYSTEM
        else gettext(", owner %(owner)s") % {"owner": key.user.get_username()}
    )
    scoped = gettext(", scopes %(scopes)s") % {"scopes": key.scopes} if key.scopes else ""
    details = f"{key.name!r}, {key.prefixed_hint}{owner}{scoped}"
    return gettext("%(kind)s key %(id)s (%(details)s)") % {
        "kind": key.kind.value,
        "id": key.key_id,
        "details": details,
    }


def describe_restrictions(key: AbstractAPIKey) -> str:
    """What limits ``key`` beyond its scopes and expiry, e.g. for the line after "Created";
    empty when nothing does."""
    parts = []
    if key.network_list:
        parts.append(
            gettext("allowed from %(networks)s") % {"networks": ", ".join(key.network_list)}
        )
    if key.rate_limit is not None:
        parts.append(
            ngettext(
                "at most %(requests)d request per %(per)d s",
                "at most %(requests)d requests per %(per)d s",
                key.rate_limit["requests"],
            )
            % key.rate_limit
        )
    if key.remaining_uses is not None:
        parts.append(
            ngettext("%(uses)d use left", "%(uses)d uses left", key.remaining_uses)
            % {"uses": key.remaining_uses}
        )
    if key.disabled:
        parts.append(
            gettext("disabled (disable_api_key --enable %(id)s enables it)") % {"id": key.key_id}
        )
    if not parts:
        return ""
    return gettext("Restrictions: %(restrictions)s.") % {"restrictions": "; ".join(parts)}


def created_lines(key: AbstractAPIKey) -> list[str]:
    """What a creating command says of the key it made (on stderr), never its plaintext."""
    expires = key.expires_at.isoformat() if key.expires_at else gettext("never")
    lines = [
        gettext("Created %(key)s, expires %(expires)s.")
        % {"key": describe_key(key), "expires": expires}
    ]
    restricted = describe_restrictions(key)
    return [*lines, restricted] if restricted else lines


def user_named(username: str) -> Any:
    """The user ``--user`` names, by the user model's natural key; a CommandError if none."""
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise CommandError(
            gettext("--user: no user %(user)s.") % {"user": repr(username)}
        ) from None


def key_by_id(value: str, plaintext_advice: str) -> AbstractAPIKey:
    """The key of either kind an id names (as list_api_keys shows it), else a CommandError."""
    if phoenix_settings.prefixes.kind_of(value) is not None:
        # Never echo it back: the terminal's scrollback is one more place to leak it.
        raise CommandError(
            gettext(
                "That is a plaintext key, not an id. Never pass a key as an argument; %(advice)s"
            )
            % {"advice": plaintext_advice}
        )
    found = find_key_by_id(value)
    if found is None:
        raise CommandError(
            gettext("No API key with id %(id)s; see list_api_keys.") % {"id": repr(value)}
        )
    return found


class LocalizedCommand(BaseCommand):
    """A command whose ``help`` is lazily translated: argparse takes only a plain string, so it
    is worked out, in the active language, when the parser is made. (django-stubs types ``help``
    as str: a lazy one is assigned with ``type: ignore[assignment]``.)"""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def execute(self, *args: Any, **options: Any) -> Any:
        """A database that cannot be used is an error the operator reads, not a traceback; a
        missing table says to run ``migrate``."""
        try:
            return super().execute(*args, **options)
        except DatabaseError as error:
            message = gettext("The database cannot be used: %(error)s.") % {
                "error": f"{type(error).__name__}: {error}"
            }
            raise CommandError(message + migrate_hint(error)) from None


class KeyCommand(LocalizedCommand):
    """A command that changes keys: the audit trail records its changes as by "command"."""

    def execute(self, *args: Any, **options: Any) -> Any:
        with audit.acting(label=audit.COMMAND):
            return super().execute(*args, **options)


class CreateKeyCommand(KeyCommand):
    """Creates one key of ``model`` and prints its plaintext alone on stdout."""

    model: type[AbstractAPIKey]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help=gettext("what the key is for"))
        parser.add_argument("--description", default="", help=gettext("optional longer note"))
        add_expiry_arguments(parser, gettext("lifetime: a number and s, m, h or d, e.g. 90d"))
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            dest="scopes",
            help=gettext(
                'narrow the key (repeatable): "read" for safe methods only, or a permission '
                '"app_label.codename" the owner has; none: the owner\'s whole authority'
            ),
        )
        self.add_restriction_arguments(parser)

    def add_restriction_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allowed-network",
            action="append",
            default=[],
            dest="allowed_networks",
            metavar="CIDR",
            help=gettext(
                "accept the key only from this network, e.g. 10.0.0.0/8 or 2001:db8::/32, or one "
                "address (repeatable); none: from anywhere"
            ),
        )
        parser.add_argument(
            "--rate-limit",
            metavar="N/SECONDS",
            help=gettext("at most N requests per SECONDS (1 to 86400), e.g. 100/60"),
        )
        parser.add_argument(
            "--remaining-uses",
            metavar="N",
            help=gettext("the key is refused after N authenticated requests (at least 1)"),
        )

    def key_fields(self, options: dict[str, Any]) -> dict[str, Any]:
        """The fields beyond name, description and expiry; subclasses add the owner."""
        return {}

    def handle(self, *args: Any, **options: Any) -> None:
        fields = {
            "name": options["name"],
            "description": options["description"],
            "expires_at": expiry(options),
            "scopes": options["scopes"],
            **restriction_fields(options),
            **self.key_fields(options),
        }
        try:
            key, plaintext = self.model.objects.create_key(**fields)  # type: ignore[attr-defined]
        except ValidationError as error:
            raise CommandError(option_errors(error, options)) from None
        except MissingSecretError as error:
            raise CommandError(str(error)) from None
        for line in created_lines(key):
            self.stderr.write(line)
        self.stderr.write(gettext("The key is shown once, on stdout; store it now."))
        self.stdout.write(plaintext)
