"""The host's user admin: each user's keys (``UserKeyInline``), the system user's protections
(``SystemUserProtection``, ``ReservedSystemUsername``), ``register_user_admin`` that registers
a user admin with both, and the system check that says when a project has not."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.checks import CheckMessage, Tags, Warning, register
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..conf import phoenix_settings
from ..models import UserKey
from ..models import is_system_user as _is_system_user
from .access import (
    RefusesUnheardRevocations,
    audited,
    may_manage_keys_of,
    refused_when_cache_unreachable,
)
from .columns import KEY_COLUMNS, KeyColumns

if TYPE_CHECKING:  # the admin classes are generic only to the type checker
    from django_stubs_ext import StrOrPromise

    TabularInline = admin.TabularInline[UserKey, Any]
else:
    TabularInline = admin.TabularInline


class UserKeyInline(KeyColumns, TabularInline):
    """A user's keys on their change page: read-only, each with a Delete (revoke) box."""

    model = UserKey
    fk_name = "user"
    extra = 0
    fields = readonly_fields = KEY_COLUMNS
    verbose_name_plural: StrOrPromise = _("API keys (tick “Delete?” and save to revoke)")

    # The page stays small however many keys a user has: the newest, and a link to them all.
    shown = 20

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def newest_of(self, request: HttpRequest, owner: Any) -> Any:
        """The owner's ``shown`` newest keys; past that, the heading links to the full list."""
        keys = self.get_queryset(request).filter(user=owner.pk)
        newest = list(
            keys.order_by("-created_at", "-pk").values_list("pk", flat=True)[: self.shown]
        )
        if len(newest) == self.shown and (total := keys.count()) > self.shown:
            url = reverse(f"{self.admin_site.name}:phoenix_apikeys_userkey_changelist")
            # HTML: format_html's named placeholders escape what goes in, as Django's admin does.
            self.verbose_name_plural = format_html(
                gettext(
                    'API keys: the newest {shown} of {total} (<a href="{url}">see all</a>; '
                    "tick “Delete?” and save to revoke)"
                ),
                shown=self.shown,
                total=total,
                url=f"{url}?user__id__exact={owner.pk}",
            )
        return keys.filter(pk__in=newest)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_keys_of(request, obj)

    has_delete_permission = has_view_permission  # who sees a user's keys may revoke them


SYSTEM_USER_NOTE = _(
    "This is the system user: system API keys and the admin secret act as it. It cannot log in, "
    "and cannot be renamed, made staff or superuser, given a password or deleted here; "
    "deactivating it stops every system key and the admin secret. Permissions and groups given "
    "to it are given to every system key and the admin secret."
)


class ReservedSystemUsername:
    """Form mixin: nobody may take the system user's name, which would hand them its keys."""

    def clean(self) -> Any:
        cleaned = super().clean()  # type: ignore[misc]
        form: Any = self
        username_field = form._meta.model.USERNAME_FIELD
        taken = form.cleaned_data.get(username_field) == phoenix_settings.SYSTEM_USERNAME
        if taken and not (form.instance.pk and _is_system_user(form.instance)):
            form.add_error(
                username_field, gettext("This username is reserved for the system user.")
            )
        return cleaned


class SystemUserProtection(RefusesUnheardRevocations):
    """Mixin for a user admin: the system user is visible but cannot be deleted, renamed, made
    staff or superuser, or given a password; its name cannot be taken; its page says what it is."""

    instances: ClassVar[weakref.WeakSet[Any]] = weakref.WeakSet()  # for the W010 check

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        SystemUserProtection.instances.add(self)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_readonly_fields(request, obj)  # type: ignore[misc]
        if obj is None or not _is_system_user(obj):
            return fields
        protected = [obj.USERNAME_FIELD, "is_staff", "is_superuser"]
        names = {field.name for field in obj._meta.get_fields()}
        return (*fields, *(name for name in protected if name in names and name not in fields))

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)  # type: ignore[misc]
        namespace = {"__module__": form.__module__}
        return type(form.__name__, (ReservedSystemUsername, form), namespace)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and _is_system_user(obj):
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[misc,no-any-return]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if obj is None or not _is_system_user(obj):
            return fieldsets
        # No "Set password" button for a user that must never have one.
        fieldsets = [
            (name, {**options, "fields": [f for f in options["fields"] if f != "password"]})
            for name, options in fieldsets
        ]
        if not fieldsets:
            return fieldsets
        # What the system user is, said in the page (a fieldset description) rather than as a
        # message, which Django styles like a success; then whatever description the host gave
        # that fieldset (Django renders descriptions as HTML).
        (name, options), *rest = fieldsets
        note = format_html('<p class="phoenix-system-user-note">{}</p>', SYSTEM_USER_NOTE)
        described = {**options, "description": str(note + (options.get("description") or ""))}
        return [(name, described), *rest]

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        inlines = super().get_inlines(request, obj)  # type: ignore[misc]
        if obj is None or not _is_system_user(obj):
            return inlines
        # The system user owns no user keys (the model refuses them): no empty key list.
        return [inline for inline in inlines if not issubclass(inline, UserKeyInline)]

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> Any:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)  # type: ignore[misc]
        if isinstance(inline, UserKeyInline) and obj is not None and obj.pk is not None:
            kwargs["queryset"] = inline.newest_of(request, obj)
        return kwargs

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        user = self.get_object(request, unquote(id))  # type: ignore[attr-defined]
        if user is not None and _is_system_user(user):
            messages.error(request, gettext("The system user cannot be given a password."))
            opts, site = user._meta, self.admin_site.name  # type: ignore[attr-defined]
            change = f"{site}:{opts.app_label}_{opts.model_name}_change"
            return HttpResponseRedirect(reverse(change, args=[user.pk]))
        return super().user_change_password(request, id, form_url)  # type: ignore[misc]

    @audited  # an inline's delete revokes a key
    @refused_when_cache_unreachable
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc,no-any-return]


# Registering ---------------------------------------------------------------------------------


def register_user_admin(site: admin.AdminSite = admin.site, base: Any = None) -> type:
    """Register the user model on ``site`` with each user's keys and the system user's
    protections, on top of ``base`` (your user admin class; Django's ``UserAdmin`` by default):
    one line in an ``admin.py``. Returns the class registered."""
    if base is None:
        from django.contrib.auth.admin import UserAdmin  # registers it: replaced below

        base = UserAdmin
    inlines = [*base.inlines, *([] if UserKeyInline in base.inlines else [UserKeyInline])]
    namespace = {"inlines": inlines, "__module__": base.__module__}
    mixed = issubclass(base, SystemUserProtection)
    extended = type(base.__name__, (base,) if mixed else (SystemUserProtection, base), namespace)
    user_model = get_user_model()
    if site.is_registered(user_model):
        site.unregister(user_model)
    site.register(user_model, extended)
    return extended


# The check ------------------------------------------------------------------------------------

NOT_EXTENDED_HINT = _(
    "In an admin.py: from phoenix_apikeys.admin import register_user_admin; then "
    "register_user_admin() for Django's UserAdmin, or register_user_admin(base=MyUserAdmin) "
    "for yours. If your users live on another AdminSite you wired yourself "
    "(register_user_admin(site=my_site)), silence phoenix_apikeys.W010."
)


def user_admin_warnings(site: admin.AdminSite) -> list[CheckMessage]:
    """W010 when ``site``'s user admin lacks the system user's protections or the key inline."""
    user_model = get_user_model()
    if site.is_registered(user_model) and any(
        protected.admin_site == site  # admin.site is a lazy object: == reaches the site
        and protected.model is user_model
        and any(issubclass(inline, UserKeyInline) for inline in protected.inlines)
        for protected in SystemUserProtection.instances
    ):
        return []
    return [
        Warning(
            gettext(
                "The user admin of admin site %(site)s lacks phoenix_apikeys' system-user "
                "protections and API key inline: the system user can be deleted, renamed or given "
                "a password there, and users' keys are not listed."
            )
            % {"site": repr(site.name)},
            hint=str(NOT_EXTENDED_HINT),
            id="phoenix_apikeys.W010",
        )
    ]


@register(Tags.admin, Tags.security)
def check_user_admin(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    ours = app_configs is None or any(config.name == "phoenix_apikeys" for config in app_configs)
    if not ours or not apps.is_installed("django.contrib.admin"):
        return []
    return user_admin_warnings(admin.site)
