"""The audit trail, read-only: events are written by the key lifecycle and never edited here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest

from ..models import KeyEvent

if TYPE_CHECKING:  # generic only to the type checker
    ModelAdmin = admin.ModelAdmin[KeyEvent]
else:
    ModelAdmin = admin.ModelAdmin


class KeyEventAdmin(ModelAdmin):
    list_display = ("at", "action", "kind", "key_id", "key_name", "actor_label", "source")
    list_filter = ("action", "kind")
    date_hierarchy = "at"
    search_fields = ("key_id", "actor_label")
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # append-only: prune_key_events removes what EVENT_RETENTION lets go
