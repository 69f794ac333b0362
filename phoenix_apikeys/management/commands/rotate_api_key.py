"""`manage.py rotate_api_key ID [--grace-period 1h]`: prints the replacing key alone on stdout.

The new key copies the old one's name, description, scopes, restrictions and owner; the old key
keeps working for the grace period (0: revoked at once). Details, and when the old key stops, go
to stderr.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.cache import CacheUnreachable
from phoenix_apikeys.management.base import (
    KeyCommand,
    add_expiry_arguments,
    created_lines,
    describe_key,
    expiry,
    key_by_id,
    option_errors,
    parse_duration,
)
from phoenix_apikeys.models import MissingSecretError


def rotation_options() -> dict[str, str]:
    """The model's error fields a rotation adds, under what the operator typed."""
    return {
        "grace_period": "--grace-period",
        "id": "ID",
        "scopes": gettext("the old key's scopes"),
        "user": gettext("the owner"),
    }


def parse_grace_period(text: str) -> timedelta:
    """``0``, or a duration as --expires-in takes it: ``1h``, ``30m``, ``7d``."""
    return timedelta(0) if text.strip() == "0" else parse_duration(text, "--grace-period")


class Command(KeyCommand):
    help = _(  # type: ignore[assignment]
        "Replace an API key with a new one (same name, description, scopes and owner) and print "
        "the new key alone on stdout; the old key keeps working for the grace period."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help=gettext("the key's id, as list_api_keys shows it"))
        parser.add_argument(
            "--grace-period",
            help=gettext(
                "how long the old key keeps working: 0 (revoke it now), or a number and s, m, "
                "h or d; default ROTATION_GRACE_PERIOD"
            ),
        )
        add_expiry_arguments(
            parser, gettext("the new key's lifetime, e.g. 90d; default: the old key's")
        )

    def handle(self, *args: Any, id: str, **options: Any) -> None:
        old = key_by_id(id, gettext("find its id with list_api_keys."))
        rotation: dict[str, Any] = {}
        if options["grace_period"] is not None:
            rotation["grace_period"] = parse_grace_period(options["grace_period"])
        if options["expires_in"] is not None or options["expires_at"] is not None:
            rotation["expires_at"] = expiry(options)
        description = describe_key(old)
        try:
            new, plaintext = type(old)._default_manager.rotate(old, **rotation)
        except ValidationError as error:
            raise CommandError(option_errors(error, options, rotation_options())) from None
        except (MissingSecretError, CacheUnreachable) as error:
            raise CommandError(str(error)) from None
        except type(old).DoesNotExist:
            raise CommandError(
                gettext("%(key)s was revoked meanwhile.") % {"key": description}
            ) from None
        for line in created_lines(new):  # with the restrictions it kept
            self.stderr.write(line)
        if old.expires_at is not None and old.expires_at <= timezone.now():  # no grace
            self.stderr.write(gettext("Revoked %(key)s.") % {"key": description})
        else:
            ends = old.expires_at.isoformat() if old.expires_at else gettext("never")
            self.stderr.write(
                gettext("%(key)s keeps working until %(ends)s.")
                % {"key": description, "ends": ends}
            )
        self.stderr.write(gettext("The new key is shown once, on stdout; store it now."))
        self.stdout.write(plaintext)
