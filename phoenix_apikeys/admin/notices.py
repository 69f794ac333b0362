"""The expiry notices sent, read-only: a row is what keeps a notice from being sent again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..ids import key_id
from ..keys import KeyKind
from ..models import ExpiryNotice

if TYPE_CHECKING:  # generic only to the type checker
    ModelAdmin = admin.ModelAdmin[ExpiryNotice]
else:
    ModelAdmin = admin.ModelAdmin


class ExpiryNoticeAdmin(ModelAdmin):
    list_display = ("key", "kind", "threshold", "sent_at")
    list_filter = ("kind",)

    @admin.display(description=_("key id"))
    def key(self, notice: ExpiryNotice) -> str:
        return key_id(KeyKind(notice.kind), notice.key_pk)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting a row would send its notice again
