"""Who is told about a key, and the email telling them that a leaked key was revoked.

Owners' and administrators' addresses are worked out here only; emails never carry a secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from .keys import KeyKind
from .rules import CONTROL

logger = logging.getLogger("phoenix_apikeys")


def admin_addresses() -> tuple[str, ...]:
    """settings.ADMINS as addresses: (name, address) pairs, or addresses (Django 6.0+)."""
    entries = getattr(settings, "ADMINS", None) or ()
    addresses = (entry if isinstance(entry, str) else entry[1] for entry in entries)
    return tuple(address for address in addresses if address)


def owner_address(user: Any) -> str:
    value = getattr(user, user.get_email_field_name(), "") or ""
    return str(value).strip()


@dataclass(frozen=True)
class LeakNotice:
    """The email telling a key's owner (user keys) or ADMINS (system keys) that it was revoked
    as leaked: its name, id and hint, never the key."""

    key_id: str
    name: str
    hint: str
    recipients: tuple[str, ...]

    @classmethod
    def of(cls, key: Any) -> LeakNotice:
        recipients = admin_addresses()
        if key.kind is KeyKind.USER:
            address = owner_address(key.user)
            recipients = (address,) if address else recipients
        return cls(key.key_id, CONTROL.sub("?", key.name), key.prefixed_hint, recipients)

    def send(self) -> None:
        if not self.recipients:
            logger.warning("Nobody to tell that leaked key %s was revoked.", self.key_id)
            return
        try:
            send_mail(
                "An API key was revoked: it was reported as leaked",
                f'The API key "{self.name}" ({self.hint}, id {self.key_id}) was revoked '
                "because it was reported as leaked: someone found it where it should not be, "
                "such as a public repository.\n\nIt no longer works. Make a new key where it "
                "was used, and remove the old one from wherever it was published.\n",
                None,
                list(self.recipients),
            )
        except Exception:  # a mail server's failure never undoes or fails the revocation
            logger.exception("Could not email about revoked leaked key %s.", self.key_id)
