"""The host's user admin: each user's keys (``UserKeyInline``), the system user's protections
(``SystemUserProtection``, ``ReservedSystemUsername``), attaching both to a registered
``UserAdmin``, and the system check that says when they could not be attached."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import django
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.checks import CheckMessage, Tags, Warning, register
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

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
    TabularInline = admin.TabularInline[UserKey, Any]
else:
    TabularInline = admin.TabularInline


class UserKeyInline(KeyColumns, TabularInline):
    """A user's keys on their change page: read-only, each with a Delete (revoke) box."""

    model = UserKey
    fk_name = "user"
    extra = 0
    fields = readonly_fields = KEY_COLUMNS
    verbose_name_plural = "API keys (tick “Delete?” and save to revoke)"

    class Media:
        css: ClassVar[dict[str, list[str]]] = {"all": ["phoenix_apikeys/admin.css"]}

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
            self.verbose_name_plural = format_html(
                'API keys: the newest {} of {} (<a href="{}?user__id__exact={}">see all</a>; '
                "tick “Delete?” and save to revoke)",
                self.shown,
                total,
                url,
                owner.pk,
            )
        return keys.filter(pk__in=newest)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_keys_of(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_keys_of(request, obj)


SYSTEM_USER_NOTE = (
    "This is the system user: system API keys and the admin secret act as it. It cannot log in, "
    "and cannot be renamed, made staff or superuser, given a password or deleted here; "
    "deactivating it stops every system key and the admin secret. Permissions and groups given "
    "to it are given to every system key and the admin secret."
)


def system_user_note(description: str | None = None) -> str:
    """The first fieldset's description on the system user's page: the note, then whatever
    description the host gave that fieldset (Django renders descriptions as HTML)."""
    note = format_html('<p class="phoenix-system-user-note">{}</p>', SYSTEM_USER_NOTE)
    return str(note + (description or ""))


class ReservedSystemUsername:
    """Form mixin: nobody may take the system user's name, which would hand them its keys."""

    def clean(self) -> Any:
        cleaned = super().clean()  # type: ignore[misc]
        form: Any = self
        username_field = form._meta.model.USERNAME_FIELD
        taken = form.cleaned_data.get(username_field) == phoenix_settings.SYSTEM_USERNAME
        if taken and not (form.instance.pk and _is_system_user(form.instance)):
            form.add_error(username_field, "This username is reserved for the system user.")
        return cleaned


class SystemUserProtection(RefusesUnheardRevocations):
    """Mixin for a user admin: the system user is visible but cannot be deleted, renamed, made
    staff or superuser, or given a password; its name cannot be taken; its page says what it is."""

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
        # message, which Django styles like a success.
        (name, options), *rest = fieldsets
        described = {**options, "description": system_user_note(options.get("description"))}
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
            messages.error(request, "The system user cannot be given a password.")
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


# Attaching ------------------------------------------------------------------------------------


def registered_user_admin(site: admin.AdminSite) -> admin.ModelAdmin[Any] | None:
    """The admin ``site`` has for the user model, or None; by public API where Django has one."""
    user_model = get_user_model()
    if not site.is_registered(user_model):
        return None
    if django.VERSION >= (5, 0):
        return site.get_model_admin(user_model)
    return site._registry[user_model]  # Django 4.2 has no public getter


def is_extended(model_admin: Any) -> bool:
    """Protected, and listing each user's keys."""
    inlines = getattr(model_admin, "inlines", ())
    has_inline = any(issubclass(inline, UserKeyInline) for inline in inlines)
    return isinstance(model_admin, SystemUserProtection) and has_inline


def attach_to_user_admin(site: admin.AdminSite = admin.site) -> bool:
    """Add ``UserKeyInline`` and ``SystemUserProtection`` to the registered user admin when it
    is Django's ``UserAdmin`` or a subclass; True when attached (now or before)."""
    model_admin = registered_user_admin(site)
    if model_admin is None or not is_django_user_admin(model_admin):
        return False
    if isinstance(model_admin, SystemUserProtection):
        return True
    admin_class = type(model_admin)
    inlines = list(admin_class.inlines)
    if UserKeyInline not in inlines:
        inlines.append(UserKeyInline)
    namespace = {"inlines": inlines, "__module__": admin_class.__module__}
    protected = type(admin_class.__name__, (SystemUserProtection, admin_class), namespace)
    user_model = get_user_model()
    site.unregister(user_model)
    site.register(user_model, protected)
    return True


def attach_to_default_site() -> None:
    """Called from ready(). Our ready() runs in INSTALLED_APPS order, possibly before the
    admin's, whose autodiscover registers the host's user admin: run that autodiscover now,
    as the admin's ready() will (importing an admin module twice registers nothing twice)."""
    from django.contrib.admin.apps import AdminConfig

    admin_config = next(
        config for config in apps.get_app_configs() if config.name == "django.contrib.admin"
    )
    if isinstance(admin_config, AdminConfig):  # SimpleAdminConfig: the host registers by hand
        admin.autodiscover()
    attach_to_user_admin(admin.site)


# The check ------------------------------------------------------------------------------------

NOT_EXTENDED_HINT = (
    "List 'django.contrib.admin' in INSTALLED_APPS and register the user model with Django's "
    "UserAdmin or a subclass of it; for another user admin, mix the protections in yourself: "
    "class MyUserAdmin(SystemUserProtection, MyBaseUserAdmin) with "
    "inlines = [*MyBaseUserAdmin.inlines, UserKeyInline] (both from phoenix_apikeys.admin). "
    "If your users live on another AdminSite you wired that way, silence phoenix_apikeys.W010."
)


def user_admin_warnings(site: admin.AdminSite) -> list[CheckMessage]:
    """W010 when ``site``'s user admin lacks the system user's protections or the key inline."""
    model_admin = registered_user_admin(site)
    if is_extended(model_admin):
        return []
    found = "is not registered" if model_admin is None else f"is {type(model_admin).__name__}"
    return [
        Warning(
            f"The user admin of admin site {site.name!r} {found} and lacks phoenix_apikeys' "
            "system-user protections and API key inline: the system user can be deleted, "
            "renamed or given a password there, and users' keys are not listed.",
            hint=NOT_EXTENDED_HINT,
            id="phoenix_apikeys.W010",
        )
    ]


@register(Tags.admin, Tags.security)
def check_user_admin(**kwargs: Any) -> list[CheckMessage]:
    if not apps.is_installed("django.contrib.admin"):
        return []
    return user_admin_warnings(admin.site)


def is_django_user_admin(model_admin: Any) -> bool:
    """Django's UserAdmin or a subclass, known by name: importing django.contrib.auth.admin
    would register UserAdmin on the default site, which a project with its own may not want."""
    return any(
        cls.__module__ == "django.contrib.auth.admin" and cls.__name__ == "UserAdmin"
        for cls in type(model_admin).__mro__
    )
