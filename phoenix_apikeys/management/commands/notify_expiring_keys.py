"""`manage.py notify_expiring_keys [--dry-run]`: email about keys nearing or past their expiry.

Run it from cron (hourly, say): each key gets one email per EXPIRY_NOTICE_THRESHOLDS value,
the nearest it has crossed, ever; runs at the same time send each notice once between them.
"""

from __future__ import annotations

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
        sent = skipped = failed = 0
        for due in due_notices(timezone.now()):
            about = gettext("%(key)s %(status)s") % {
                "key": describe_key(due.key),
                "status": when(due.threshold),
            }
            if due.problem is not None:
                self.stdout.write(
                    gettext("Skipped %(about)s: %(problem)s.")
                    % {"about": about, "problem": due.problem}
                )
                skipped += 1
                continue
            to = ", ".join(due.recipients)
            if dry_run:
                self.stdout.write(
                    gettext("Would send %(about)s, to %(to)s.") % {"about": about, "to": to}
                )
                sent += 1
                continue
            try:
                claimed = send_once(due)
            except Exception as error:  # the email failed; nothing is recorded
                self.stderr.write(
                    gettext("Failed %(about)s, to %(to)s: %(error)s; the next run tries again.")
                    % {"about": about, "to": to, "error": f"{type(error).__name__}: {error}"}
                )
                failed += 1
                continue
            if claimed:
                self.stdout.write(
                    gettext("Sent %(about)s, to %(to)s.") % {"about": about, "to": to}
                )
                sent += 1
            else:
                self.stdout.write(
                    gettext("Skipped %(about)s: another run sent it.") % {"about": about}
                )
                skipped += 1
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
