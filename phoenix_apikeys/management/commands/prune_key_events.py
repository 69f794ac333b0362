"""`manage.py prune_key_events [--dry-run]`: delete audit events older than EVENT_RETENTION."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from phoenix_apikeys.conf import phoenix_settings
from phoenix_apikeys.models import KeyEvent


class Command(BaseCommand):
    help = (
        "Delete the audit trail's key events older than EVENT_RETENTION; --dry-run only counts "
        "them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        cutoff = timezone.now() - phoenix_settings.EVENT_RETENTION
        if dry_run:
            count = KeyEvent.objects.filter(at__lt=cutoff).count()
        else:  # the one way events go: KeyEvent and its queryset refuse every other delete
            count = KeyEvent.objects.prune_older_than(cutoff)
        verb = "Would prune" if dry_run else "Pruned"
        self.stdout.write(
            f"{verb} {count} key event{'' if count == 1 else 's'} from before {cutoff.isoformat()}."
        )
