"""`manage.py revoke_api_key ID`, or `--stdin` with a leaked plaintext key piped in.

A plaintext key is read only from stdin: on the command line it would land in the shell
history and the process list.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.cache import CacheUnreachable
from phoenix_apikeys.keys import MalformedKey
from phoenix_apikeys.management.base import KeyCommand, describe_key, key_by_id
from phoenix_apikeys.models import (
    AbstractAPIKey,
    MissingSecretError,
    find_key_by_plaintext,
)

# Far longer than any key; a larger paste is not a key.
MAX_STDIN = 4096


class Command(KeyCommand):
    help = _(  # type: ignore[assignment]
        "Revoke (delete) an API key by its id, or by its plaintext read from stdin (--stdin)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "id", nargs="?", help=gettext("the key's id, as list_api_keys shows it")
        )
        parser.add_argument(
            "--stdin", action="store_true", help=gettext("read a leaked plaintext key from stdin")
        )

    def handle(self, *args: Any, id: str | None, stdin: bool, **options: Any) -> None:
        if stdin == (id is not None):
            raise CommandError(gettext("Give either a key id or --stdin (with the key piped in)."))
        key = self.by_plaintext() if stdin else self.by_id(str(id))
        description = describe_key(key)
        try:
            revoked = type(key)._default_manager.revoke(key)
        except CacheUnreachable as error:
            raise CommandError(str(error)) from None
        if not revoked:  # revoked by someone else between our lookup and our delete
            raise CommandError(gettext("%(key)s was already revoked.") % {"key": description})
        self.stdout.write(gettext("Revoked %(key)s.") % {"key": description})

    def by_id(self, value: str) -> AbstractAPIKey:
        return key_by_id(value, gettext("pipe it in: revoke_api_key --stdin"))

    def by_plaintext(self) -> AbstractAPIKey:
        text = sys.stdin.read(MAX_STDIN + 1).strip()
        try:
            found = find_key_by_plaintext(text)
        except MalformedKey as error:
            # ``error`` says which check failed (prefix, length, ...), never the text read.
            raise CommandError(
                gettext("stdin does not hold a key of this deployment (%(error)s).")
                % {"error": error}
            ) from None
        except MissingSecretError as error:
            raise CommandError(str(error)) from None
        if found is None:
            raise CommandError(
                gettext("No stored key matches (already revoked, or another deployment).")
            )
        return found
