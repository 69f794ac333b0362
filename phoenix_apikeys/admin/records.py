"""The records the app keeps, read-only: the audit trail's key events and the expiry notices
sent. Neither is ever added, edited or deleted here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..ids import key_id
from ..keys import KeyKind
from ..models import ExpiryNotice, KeyEvent

if TYPE_CHECKING:  # generic only to the type checker
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(KeyEvent)
class KeyEventAdmin(ReadOnlyAdmin):
    """Events are written by the key lifecycle; append-only: prune_key_events removes what
    EVENT_RETENTION lets go."""

    list_display = ("at", "action", "kind", "key_id", "key_name", "actor_label", "source")
    list_filter = ("action", "kind")
    date_hierarchy = "at"
    search_fields = ("key_id", "actor_label")
    actions = None


@admin.register(ExpiryNotice)
class ExpiryNoticeAdmin(ReadOnlyAdmin):
    """A row is what keeps a notice from being sent again: deleting it would send it again."""

    list_display = ("key", "kind", "threshold", "sent_at")
    list_filter = ("kind",)

    @admin.display(description=_("key id"))
    def key(self, notice: ExpiryNotice) -> str:
        return key_id(KeyKind(notice.kind), notice.key_pk)
