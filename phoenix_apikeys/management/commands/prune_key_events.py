"""`manage.py prune_key_events [--dry-run]`: delete audit events older than EVENT_RETENTION."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.conf import phoenix_settings
from phoenix_apikeys.management.base import LocalizedCommand
from phoenix_apikeys.models import KeyEvent


class Command(LocalizedCommand):
    help = _(  # type: ignore[assignment]
        "Delete the audit trail's key events older than EVENT_RETENTION; --dry-run only counts "
        "them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help=gettext("count, delete nothing"))

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        cutoff = timezone.now() - phoenix_settings.EVENT_RETENTION
        if dry_run:
            count = KeyEvent.objects.filter(at__lt=cutoff).count()
            summary = ngettext(
                "Would prune %(count)d key event from before %(cutoff)s.",
                "Would prune %(count)d key events from before %(cutoff)s.",
                count,
            )
        else:  # the one way events go: KeyEvent and its queryset refuse every other delete
            count = KeyEvent.objects.prune_older_than(cutoff)
            summary = ngettext(
                "Pruned %(count)d key event from before %(cutoff)s.",
                "Pruned %(count)d key events from before %(cutoff)s.",
                count,
            )
        self.stdout.write(summary % {"count": count, "cutoff": cutoff.isoformat()})
