"""A key's restrictions and disabled state in the key admins: shown read-only on the key's page,
and disabling and enabling, by a list action for each and a button on the key's page.

Disabling and enabling take the authority of revocation (``has_delete_permission`` of the key):
whoever may revoke a key may stop it for a while instead. The manager makes each change and
records its event; a key cache that cannot hear of a change refuses it, and nothing changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..cache import CacheUnreachable
from ..models import AbstractAPIKey
from ..rules import duration_text
from .access import audited
from .columns import short_datetime

if TYPE_CHECKING:  # the mixin is a ModelAdmin only to the type checker
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = object

# The read-only fields of the "Restrictions" section of a key's page.
RESTRICTION_FIELDS: tuple[str, ...] = (
    "allowed_from",
    "rate_limit_text",
    "uses_left",
    "disabled_text",
    "used_from",
)
# What the key page's button posts as ``state``: disable or enable.
DISABLE, ENABLE = "disable", "enable"


class KeyState(ModelAdmin):
    """Mixin for the key admins (before ``ModelAdmin``): the restrictions section of a key's
    page, the disable and enable actions, and the view the key page's button posts to."""

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, (_("Restrictions"), {"fields": RESTRICTION_FIELDS})]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), *RESTRICTION_FIELDS)

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_state"
        view = self.admin_site.admin_view(self.state_view)
        return [path("<path:object_id>/state/", view, name=name), *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The page's Disable / Enable button, shown to whoever may revoke the key.
        context = {"key_state_url": self.admin_url("state", object_id), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    # Disable and enable -----------------------------------------------------------------------

    @admin.action(description=_("Disable selected keys"), permissions=["delete"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self.change_state(request, list(queryset.order_by("pk")), disable=True)

    @admin.action(description=_("Enable selected keys"), permissions=["delete"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self.change_state(request, list(queryset.order_by("pk")), disable=False)

    @audited
    def state_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The key page's button: POST ``state`` (disable or enable), then back to the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        wanted = request.POST.get("state")
        if wanted not in (DISABLE, ENABLE):
            return HttpResponseBadRequest()
        key = self.get_object(request, unquote(object_id))
        if key is None:  # revoked, or not one this user may see
            self.message_user(request, gettext("That key was revoked meanwhile."), messages.ERROR)
            return HttpResponseRedirect(self.admin_url("changelist"))
        if not self.has_delete_permission(request, key):
            raise PermissionDenied
        self.change_state(request, [key], disable=wanted == DISABLE)
        return HttpResponseRedirect(self.admin_url("change", quote(key.pk)))

    def admin_url(self, view: str, *args: Any) -> str:
        name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{view}"
        return reverse(name, args=args)

    def change_state(self, request: HttpRequest, keys: list[Any], *, disable: bool) -> None:
        """Disable or enable ``keys``: all of them or, refused, none."""
        if not all(self.has_delete_permission(request, key) for key in keys):
            self.message_user(
                request,
                gettext("You may disable or enable only keys you may revoke; nothing changed."),
                messages.ERROR,
            )
            return
        manager: Any = self.model._default_manager
        change = manager.disable if disable else manager.enable
        try:
            with transaction.atomic(using=manager.primary()):
                changed = sum(1 for key in keys if change(key))
        except CacheUnreachable:
            problem = gettext(
                "The API key cache cannot be reached, so the change could not reach every "
                "server; nothing changed. Retry shortly."
            )
        except self.model.DoesNotExist:
            problem = gettext("A selected key was revoked meanwhile; nothing changed.")
        else:
            level = messages.SUCCESS if changed else messages.WARNING
            self.message_user(request, state_changed(changed, len(keys), disable=disable), level)
            return
        self.message_user(request, problem, messages.ERROR)

    # The key's page ---------------------------------------------------------------------------

    @admin.display(description=_("allowed networks"))
    def allowed_from(self, key: AbstractAPIKey) -> str:
        networks = key.network_list
        if not networks:
            return gettext("Any address.")
        return format_html_join(mark_safe("<br>"), "<code>{}</code>", ((net,) for net in networks))

    @admin.display(description=_("rate limit"))
    def rate_limit_text(self, key: AbstractAPIKey) -> str:
        limit = key.rate_limit
        if limit is None:
            return gettext("None.")
        # "100 requests per 1 minute": the window in its largest whole unit.
        requests, window = limit["requests"], duration_text(timedelta(seconds=limit["per"]))
        return ngettext(
            "%(count)d request per %(window)s.", "%(count)d requests per %(window)s.", requests
        ) % {"count": requests, "window": window}

    @admin.display(description=_("remaining uses"))
    def uses_left(self, key: AbstractAPIKey) -> str:
        left = key.remaining_uses
        if left is None:
            return gettext("Unlimited.")
        if left == 0:
            return gettext("None left: the key is refused.")
        return ngettext("%(count)d use left.", "%(count)d uses left.", left) % {"count": left}

    @admin.display(description=_("disabled"))
    def disabled_text(self, key: AbstractAPIKey) -> str:
        if key.disabled:
            return gettext("Yes: every request with this key is refused until it is enabled.")
        return gettext("No.")

    @admin.display(description=_("last used from"))
    def used_from(self, key: AbstractAPIKey) -> str:
        recent = key.recent_addresses
        if not recent:
            return gettext("No address recorded yet.")
        return format_html_join(
            mark_safe("<br>"),
            "<code>{}</code> {}",
            ((entry.get("address", ""), used_at(entry.get("at", ""))) for entry in recent),
        )


def used_at(text: str) -> str:
    try:
        return short_datetime(datetime.fromisoformat(text))
    except (TypeError, ValueError):
        return format_html("{}", text)


def state_changed(changed: int, selected: int, *, disable: bool) -> str:
    if disable:
        text = ngettext(
            "%(count)d key disabled: requests with it are refused until it is enabled.",
            "%(count)d keys disabled: requests with them are refused until they are enabled.",
            changed,
        )
    else:
        text = ngettext("%(count)d key enabled.", "%(count)d keys enabled.", changed)
    text %= {"count": changed}
    unchanged = selected - changed
    if unchanged:
        already = ngettext("%(count)d already was.", "%(count)d already were.", unchanged)
        text = f"{text} {already % {'count': unchanged}}"
    return text
