"""Email backends for the expiry-notice tests: Django's locmem outbox, failing or slow on demand."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from django.core.mail.backends.locmem import EmailBackend


class FlakyMailBackend(EmailBackend):
    """Refuses, as an SMTP server would, every message to an address in ``refused``."""

    refused: ClassVar[set[str]] = set()

    def send_messages(self, messages: Sequence[Any]) -> int:
        for message in messages:
            if self.refused & set(message.recipients()):
                raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")
        return int(super().send_messages(messages))


class SlowMailBackend(EmailBackend):
    """Takes a while per message, as a remote server does, so that concurrent runs overlap."""

    def send_messages(self, messages: Sequence[Any]) -> int:
        time.sleep(0.05)
        return int(super().send_messages(messages))
