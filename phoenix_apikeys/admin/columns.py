"""How keys look in lists: the columns shared by the key admins and the user page's inline, and
the status filter. Status is the model's (``with_status``), read from the queryset annotation."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import scopes
from ..models import AbstractAPIKey, KeyStatus

# The annotation ``APIKeyQuerySet.with_status`` adds.
STATUS = "status"

KEY_COLUMNS: tuple[str, ...] = (
    "name",
    "key_hint",
    "created",
    "expires",
    "last_used",
    "key_status",
)
# After creation only name and description can change; the rest is shown read-only.
EDITABLE_KEY_FIELDS: tuple[str, ...] = ("name", "description")
READ_ONLY_KEY_FIELDS: tuple[str, ...] = (
    "key_hint",
    "scope_details",
    "key_status",
    "created",
    "expires",
    "last_used",
)


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = STATUS

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(status.value, capfirst(status.label)) for status in KeyStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value not in {status.value for status in KeyStatus}:
            return queryset
        filtered: QuerySet[Any] = queryset.filter(**{STATUS: value})
        return filtered


class KeyColumns:
    """Mixin for the key admins and ``UserKeyInline``: their queryset carries each key's status,
    and the columns, read-only fields and style sheet they share."""

    class Media:
        css: ClassVar[dict[str, list[str]]] = {"all": ["phoenix_apikeys/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        annotated: QuerySet[Any] = queryset.with_status()
        return annotated

    @admin.display(description=_("key"))
    def key_hint(self, key: AbstractAPIKey) -> str:
        """The hint, and under it what the key may do: every list shows the scopes."""
        return format_html(
            '<code class="phoenix-key-hint">{}</code>{}', key.prefixed_hint, self.key_scopes(key)
        )

    @admin.display(description=_("scopes"))
    def key_scopes(self, key: AbstractAPIKey) -> str:
        """Compact in lists ("all", "read", "read + 2 perms"); every scope in the tooltip."""
        listed = key.scope_list
        if not listed:
            return format_html('<span class="phoenix-key-scopes">{}</span>', gettext("all"))
        perms = len(scopes.permissions(listed))
        parts = [scopes.READ] if scopes.READ in listed else []
        if perms:
            parts.append(ngettext("%(count)d perm", "%(count)d perms", perms) % {"count": perms})
        return format_html(
            '<span class="phoenix-key-scopes" title="{}">{}</span>',
            " ".join(listed),
            " + ".join(parts),
        )

    @admin.display(description=_("scopes"))
    def scope_details(self, key: AbstractAPIKey) -> str:
        """On the key's own page: every scope, one per line."""
        listed = key.scope_list
        if not listed:
            return gettext("All of its owner's authority (no scopes).")
        return format_html_join(
            mark_safe("<br>"), "<code>{}</code>", ((scope,) for scope in listed)
        )

    @admin.display(description=_("status"), ordering=STATUS)
    def key_status(self, key: AbstractAPIKey) -> str:
        status = KeyStatus(getattr(key, STATUS))
        css = status.value.replace("_", "-")  # the class admin.css styles the badge by
        return format_html('<span class="phoenix-key-status {}">{}</span>', css, status.label)

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, key: AbstractAPIKey) -> str:
        return short_datetime(key.created_at)

    @admin.display(description=_("expires"), ordering="expires_at")
    def expires(self, key: AbstractAPIKey) -> str:
        return short_datetime(key.expires_at)

    @admin.display(description=_("last used"), ordering="last_used_at")
    def last_used(self, key: AbstractAPIKey) -> str:
        return short_datetime(key.last_used_at)


def short_datetime(value: datetime | None) -> str:
    """Compact and sortable by eye, in the current time zone; "Never" for no value. Date and
    time each stay whole: a narrow column breaks the line between them, never inside a date."""
    if value is None:
        return gettext("Never")
    local = timezone.localtime(value)
    return format_html(
        '<span class="phoenix-date">{}</span> <span class="phoenix-date">{}</span>',
        date_format(local, "Y-m-d"),
        date_format(local, "H:i"),
    )
