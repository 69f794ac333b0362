"""`manage.py disable_api_key ID [--enable]`: refuse a key everywhere, or accept it again.

A disabled key keeps its id, secret, scopes and restrictions, so enabling it restores it as it
was; revoke_api_key is for a key that must never work again. Each change is a key event.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.cache import CacheUnreachable
from phoenix_apikeys.management.base import KeyCommand, describe_key, key_by_id


def outcome(enable: bool, changed: bool) -> str:
    """What happened, with ``%(key)s`` for the key."""
    if changed:
        return gettext("Enabled %(key)s.") if enable else gettext("Disabled %(key)s.")
    if enable:
        return gettext("Nothing changed: %(key)s was already enabled.")
    return gettext("Nothing changed: %(key)s was already disabled.")


class Command(KeyCommand):
    help = _(  # type: ignore[assignment]
        "Disable an API key by its id: it is refused everywhere but kept as it is, until "
        "--enable accepts it again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help=gettext("the key's id, as list_api_keys shows it"))
        parser.add_argument(
            "--enable", action="store_true", help=gettext("enable a disabled key again")
        )

    def handle(self, *args: Any, id: str, enable: bool, **options: Any) -> None:
        key = key_by_id(id, gettext("find its id with list_api_keys."))
        description = describe_key(key)
        keys = type(key)._default_manager
        try:
            changed = keys.enable(key) if enable else keys.disable(key)
        except CacheUnreachable:
            raise CommandError(
                gettext(
                    "The API key cache cannot be reached, so the change could not reach every "
                    "server; nothing changed. Retry shortly."
                )
            ) from None
        except type(key).DoesNotExist:
            raise CommandError(
                gettext("%(key)s was revoked meanwhile.") % {"key": description}
            ) from None
        self.stdout.write(outcome(enable, changed) % {"key": description})
