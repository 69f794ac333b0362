"""`manage.py list_api_keys`: every key's metadata, never a secret."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.keys import KeyKind
from phoenix_apikeys.management.base import LocalizedCommand, user_named
from phoenix_apikeys.models import KEY_MODELS, AbstractAPIKey
from phoenix_apikeys.rules import CONTROL

COLUMNS = (
    "id",
    "kind",
    "name",
    "owner",
    "hint",
    "scopes",
    "created_at",
    "expires_at",
    "last_used_at",
)


def row(key: AbstractAPIKey) -> dict[str, Any]:
    """``key`` comes annotated by ``with_status``."""
    return {
        "id": key.key_id,
        "kind": key.kind.value,
        "name": key.name,
        "owner": "" if key.kind is KeyKind.SYSTEM else key.user.get_username(),
        "hint": key.prefixed_hint,
        "scopes": list(key.scope_list),
        "created_at": key.created_at.isoformat(),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "status": key.status,  # type: ignore[attr-defined]
        "disabled": key.disabled,
        "allowed_networks": key.network_list,
        "rate_limit": key.rate_limit,
        "remaining_uses": key.remaining_uses,
        "last_used_from": key.recent_addresses,
    }


def restrictions(entry: dict[str, Any]) -> str | None:
    """A row's restrictions in brief, e.g. ``net=2,rate=100/60,uses=5``; None when none."""
    rate = entry["rate_limit"]
    parts = [
        f"net={len(entry['allowed_networks'])}" if entry["allowed_networks"] else "",
        f"rate={rate['requests']}/{rate['per']}" if rate else "",
        f"uses={entry['remaining_uses']}" if entry["remaining_uses"] is not None else "",
    ]
    return ",".join(part for part in parts if part) or None


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):  # scopes: none means the owner's whole authority
        return ",".join(value) or "all"
    # Names are free text: no control character may reach the operator's terminal.
    return CONTROL.sub("?", str(value))


def table(rows: list[dict[str, Any]]) -> str:
    """One line a key; the restrictions come last, so the columns before keep their places."""
    headers = [*COLUMNS, "status", "restrictions"]
    cells = [
        [*(cell(entry[column]) for column in headers[:-1]), cell(restrictions(entry))]
        for entry in rows
    ]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=False)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


class Command(LocalizedCommand):
    help = _(  # type: ignore[assignment]
        "List API keys with their ids, owners, hints, dates, status and restrictions; never a "
        "secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", choices=[kind.value for kind in KeyKind])
        parser.add_argument("--user", help=gettext("only this user's keys"))
        parser.add_argument(
            "--json", action="store_true", help=gettext("a JSON list instead of a table")
        )

    def handle(self, *args: Any, kind: str | None, user: str | None, **options: Any) -> None:
        kinds = [KeyKind(kind)] if kind else list(KeyKind)
        filters: dict[str, Any] = {}
        if user is not None:
            if kind == KeyKind.SYSTEM.value:
                raise CommandError(
                    gettext("--user lists user keys; it cannot be combined with system.")
                )
            kinds, filters = [KeyKind.USER], {"user": user_named(user)}
        now = timezone.now()
        keys: list[AbstractAPIKey] = [
            key
            for each in kinds
            for key in KEY_MODELS[each]
            ._default_manager.filter(**filters)
            .with_status(now)
            .select_related("user")
        ]
        keys.sort(key=lambda key: key.created_at, reverse=True)
        rows = [row(key) for key in keys]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
        elif rows:
            self.stdout.write(table(rows))
        else:
            self.stdout.write(gettext("No API keys."))
