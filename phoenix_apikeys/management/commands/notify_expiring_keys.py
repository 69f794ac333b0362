"""`manage.py notify_expiring_keys [--dry-run]`: email about keys nearing or past their expiry.

Run it from cron (hourly, say): each key gets one email per EXPIRY_NOTICE_THRESHOLDS value,
the nearest it has crossed, ever; runs at the same time send each notice once between them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from phoenix_apikeys.management.base import describe_key
from phoenix_apikeys.management.notices import due_notices, send_once, when


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Email the owners of user keys, and ADMINS for system keys, about keys nearing or past "
        "their expiry: once per key per EXPIRY_NOTICE_THRESHOLDS value. --dry-run only lists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list, send and record nothing")

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        sent = skipped = failed = 0
        for due in due_notices(timezone.now()):
            about = f"{describe_key(due.key)} {when(due.threshold)}"
            if due.problem is not None:
                self.stdout.write(f"Skipped {about}: {due.problem}.")
                skipped += 1
                continue
            to = ", ".join(due.recipients)
            if dry_run:
                self.stdout.write(f"Would send {about}, to {to}.")
                sent += 1
                continue
            try:
                claimed = send_once(due)
            except Exception as error:  # the email failed; nothing is recorded
                self.stderr.write(
                    f"Failed {about}, to {to}: {type(error).__name__}: {error}; "
                    "the next run tries again."
                )
                failed += 1
                continue
            if claimed:
                self.stdout.write(f"Sent {about}, to {to}.")
                sent += 1
            else:
                self.stdout.write(f"Skipped {about}: another run sent it.")
                skipped += 1
        verb = "Would send" if dry_run else "Sent"
        summary = f"{verb} {plural(sent, 'notice')}; skipped {skipped}"
        self.stdout.write(f"{summary}; failed {failed}." if not dry_run else f"{summary}.")
        if failed:
            raise CommandError(
                f"{plural(failed, 'notice')} could not be sent; the next run tries again."
            )
