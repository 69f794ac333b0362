"""`manage.py prune_api_keys [--dry-run]`: delete keys past their expiry."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.cache import CacheUnreachable
from phoenix_apikeys.management.base import KeyCommand, describe_key
from phoenix_apikeys.models import KEY_MODELS


class Command(KeyCommand):
    help = _(  # type: ignore[assignment]
        "Delete every expired API key (system and user); --dry-run only lists them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help=gettext("list, delete nothing"))

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        now = timezone.now()
        count = 0
        for model in KEY_MODELS.values():
            manager: Any = model._default_manager
            if dry_run:
                pruned = manager.expired(now).select_related("user").order_by("pk")
            else:
                pruned = manager.prune_expired(now)  # each recorded as expired_pruned
            try:
                for key in pruned:
                    line = (
                        gettext("Would prune %(key)s.") if dry_run else gettext("Pruned %(key)s.")
                    )
                    self.stdout.write(line % {"key": describe_key(key)})
                    count += 1
            except CacheUnreachable as error:
                raise CommandError(str(error)) from None
        if dry_run:
            summary = ngettext(
                "Would prune %(count)d expired key.", "Would prune %(count)d expired keys.", count
            )
        else:
            summary = ngettext(
                "Pruned %(count)d expired key.", "Pruned %(count)d expired keys.", count
            )
        self.stdout.write(summary % {"count": count})
