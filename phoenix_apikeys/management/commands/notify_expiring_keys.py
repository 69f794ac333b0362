"""`manage.py notify_expiring_keys [--dry-run]`: email about keys nearing or past their expiry.

Run it from cron (hourly, say): each key gets one email per EXPIRY_NOTICE_THRESHOLDS value,
the nearest it has crossed, ever; runs at the same time send each notice once between them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.management.base import LocalizedCommand, describe_key
from phoenix_apikeys.management.notices import due_notices, send_once, when


class Command(LocalizedCommand):
    help = _(  # type: ignore[assignment]
        "Email the owners of user keys, and ADMINS for system keys, about keys nearing or past "
        "their expiry: once per key per EXPIRY_NOTICE_THRESHOLDS value. --dry-run only lists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help=gettext("list, send and record nothing")
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        outcomes = Counter(self.notify(due, dry_run) for due in due_notices(timezone.now()))
        sent, skipped, failed = outcomes["sent"], outcomes["skipped"], outcomes["failed"]
        counts = {"count": sent, "skipped": skipped, "failed": failed}
        if dry_run:
            summary = ngettext(
                "Would send %(count)d notice; skipped %(skipped)d.",
                "Would send %(count)d notices; skipped %(skipped)d.",
                sent,
            )
        else:
            summary = ngettext(
                "Sent %(count)d notice; skipped %(skipped)d; failed %(failed)d.",
                "Sent %(count)d notices; skipped %(skipped)d; failed %(failed)d.",
                sent,
            )
        self.stdout.write(summary % counts)
        if failed:
            raise CommandError(
                ngettext(
                    "%(count)d notice could not be sent; the next run tries again.",
                    "%(count)d notices could not be sent; the next run tries again.",
                    failed,
                )
                % {"count": failed}
            )

    def notify(self, due: Any, dry_run: bool) -> str:
        """Send (or, in a dry run, say) one notice; "sent", "skipped" or "failed"."""
        about = gettext("%(key)s %(status)s") % {
            "key": describe_key(due.key),
            "status": when(due.threshold),
        }
        if due.problem is not None:
            self.stdout.write(
                gettext("Skipped %(about)s: %(problem)s.")
                % {"about": about, "problem": due.problem}
            )
            return "skipped"
        to = ", ".join(due.recipients)
        if dry_run:
            self.stdout.write(
                gettext("Would send %(about)s, to %(to)s.") % {"about": about, "to": to}
            )
            return "sent"
        try:
            claimed = send_once(due)
        except Exception as error:  # the email failed; nothing is recorded
            self.stderr.write(
                gettext("Failed %(about)s, to %(to)s: %(error)s; the next run tries again.")
                % {"about": about, "to": to, "error": f"{type(error).__name__}: {error}"}
            )
            return "failed"
        if not claimed:
            self.stdout.write(gettext("Skipped %(about)s: another run sent it.") % {"about": about})
            return "skipped"
        self.stdout.write(gettext("Sent %(about)s, to %(to)s.") % {"about": about, "to": to})
        return "sent"
