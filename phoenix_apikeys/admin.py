"""Django admin pages for system and user keys, and the hooks that protect the system user.

A new key is shown once, in the response to the POST that created it (never via a redirect, the
messages framework, the session or a URL); a one-time nonce in the add form turns a reload of
that response into a redirect that creates nothing.
"""

from __future__ import annotations

import functools
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.crypto import get_random_string
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_variables

from .cache import CacheUnreachable
from .conf import phoenix_settings
from .http import PRINCIPAL_ATTRIBUTE
from .models import AbstractAPIKey, MissingSecretError, SystemKey, UserKey, validate_expiry
from .models import is_system_user as _is_system_user
from .permissions import VIEW_ALL_USER_KEYS

if TYPE_CHECKING:  # the admin classes are generic only to the type checker
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[UserKey, Any]
else:
    ModelAdmin, TabularInline = admin.ModelAdmin, admin.TabularInline

EXPIRES_SOON = timedelta(days=7)
EXPIRY_PRESET_DAYS = (7, 30, 90)
DEFAULT_EXPIRY_DAYS = 30
NEVER, ON_DATE = "never", "date"
# Nonces of add forms already used in this session; a nonce is not a secret.
USED_NONCES_SESSION_KEY = "phoenix_apikeys_used_nonces"
USED_NONCES_KEPT = 50


# Status -------------------------------------------------------------------------------------

ACTIVE, EXPIRES_SOON_STATUS, EXPIRED = "active", "expires soon", "expired"


def status_of(key: AbstractAPIKey, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if key.expires_at is None or key.expires_at > now + EXPIRES_SOON:
        return ACTIVE
    if key.expires_at > now:
        return EXPIRES_SOON_STATUS
    return EXPIRED


def status_filter(status: str, now: datetime) -> Q:
    """The queryset twin of ``status_of``."""
    if status == EXPIRED:
        return Q(expires_at__lte=now)
    if status == EXPIRES_SOON_STATUS:
        return Q(expires_at__gt=now, expires_at__lte=now + EXPIRES_SOON)
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now + EXPIRES_SOON)


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(ACTIVE, "Active"), ("soon", "Expires soon"), (EXPIRED, "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value is None:
            return queryset
        status = EXPIRES_SOON_STATUS if value == "soon" else value
        filtered: QuerySet[Any] = queryset.filter(status_filter(status, timezone.now()))
        return filtered


# Columns shared by the key admins and the inline -------------------------------------------


class KeyColumns:
    """Columns and read-only fields shared by the key admins and ``UserKeyInline``."""

    @admin.display(description="key")
    def key_hint(self, key: AbstractAPIKey) -> str:
        return format_html('<code class="phoenix-key-hint">{}</code>', key.prefixed_hint)

    @admin.display(description="status")
    def key_status(self, key: AbstractAPIKey) -> str:
        status = status_of(key)
        css = "expires-soon" if status == EXPIRES_SOON_STATUS else status
        return format_html('<span class="phoenix-key-status {}">{}</span>', css, status)

    @admin.display(description="created", ordering="created_at")
    def created(self, key: AbstractAPIKey) -> str:
        return short_datetime(key.created_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, key: AbstractAPIKey) -> str:
        return short_datetime(key.expires_at)

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, key: AbstractAPIKey) -> str:
        return short_datetime(key.last_used_at)


def short_datetime(value: datetime | None) -> str:
    """Compact and sortable by eye, in the current time zone; "Never" for no value."""
    if value is None:
        return "Never"
    return date_format(timezone.localtime(value), "Y-m-d H:i")


KEY_COLUMNS: tuple[str, ...] = ("name", "key_hint", "created", "expires", "last_used", "key_status")
# After creation only name and description can change; the rest is shown read-only.
EDITABLE_KEY_FIELDS: tuple[str, ...] = ("name", "description")
READ_ONLY_KEY_FIELDS: tuple[str, ...] = (
    "key_hint",
    "key_status",
    "created",
    "expires",
    "last_used",
)


# The add form ---------------------------------------------------------------------------------


def expiry_choices() -> list[tuple[str, str]]:
    """Presets allowed by MAX_KEY_LIFETIME, then "never" (if allowed) and a chosen date."""
    lifetime = phoenix_settings.MAX_KEY_LIFETIME
    choices = [
        (str(days), f"In {days} days")
        for days in EXPIRY_PRESET_DAYS
        if lifetime is None or timedelta(days=days) <= lifetime
    ]
    if lifetime is None:
        choices.append((NEVER, "Never"))
    choices.append((ON_DATE, "On a date…"))
    return choices


def default_expiry_choice() -> str:
    values = [value for value, _label in expiry_choices()]
    return str(DEFAULT_EXPIRY_DAYS) if str(DEFAULT_EXPIRY_DAYS) in values else values[0]


def lifetime_help() -> str:
    lifetime = phoenix_settings.MAX_KEY_LIFETIME
    if lifetime is None:
        return "An expired key stops working; it cannot be extended later."
    return f"Keys may live at most {lifetime.days} days here (MAX_KEY_LIFETIME)."


class KeyAddForm(forms.Form):
    """Name, description and expiry; the owner is never a form field."""

    name = forms.CharField(max_length=255, help_text="What or who will use this key.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    expires_in = forms.ChoiceField(label="Expiration", choices=expiry_choices)
    expires_on = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only with “On a date…”: the key stops working at 00:00 that day.",
    )
    nonce = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expires_in"].help_text = lifetime_help()
        # No browser restore on Back: going back to this form starts a new key from scratch.
        for field in self.fields.values():
            field.widget.attrs["autocomplete"] = "off"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "expires_in" not in cleaned or "expires_on" not in cleaned:
            return cleaned  # the field's own error says what is wrong
        try:
            cleaned["expires_at"] = self._expires_at(cleaned["expires_in"], cleaned["expires_on"])
        except ValidationError as error:
            field = "expires_on" if cleaned["expires_in"] == ON_DATE else "expires_in"
            self.add_error(field, error.messages)
        return cleaned

    @staticmethod
    def _expires_at(choice: str, on_date: Any) -> datetime | None:
        if choice != ON_DATE and on_date is not None:
            raise ValidationError("Choose “On a date…” to use a date, or clear the date.")
        if choice == NEVER:
            return None
        if choice == ON_DATE:
            if on_date is None:
                raise ValidationError("Pick the date the key stops working.")
            expires_at = timezone.make_aware(datetime.combine(on_date, time.min))
        else:
            expires_at = timezone.now() + timedelta(days=int(choice))
        validate_expiry(expires_at)
        return expires_at


# Nonces ---------------------------------------------------------------------------------------


def new_nonce() -> str:
    return get_random_string(32)


def nonce_was_used(request: HttpRequest, nonce: str) -> bool:
    return nonce in request.session.get(USED_NONCES_SESSION_KEY, [])


def record_nonce(request: HttpRequest, nonce: str) -> None:
    used = [*request.session.get(USED_NONCES_SESSION_KEY, []), nonce]
    request.session[USED_NONCES_SESSION_KEY] = used[-USED_NONCES_KEPT:]


# Key admins -----------------------------------------------------------------------------------


def refused_when_cache_unreachable(view: Any) -> Any:
    """A revocation the key cache could not hear of was rolled back: say so, never a 500."""

    @functools.wraps(view)
    def guarded_view(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(self, request, *args, **kwargs)
        except CacheUnreachable as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    return guarded_view


def made_with_api_key(request: HttpRequest) -> bool:
    """Keys cannot mint keys: APIKeyMiddleware marks requests authenticated by a credential."""
    return getattr(request, PRINCIPAL_ATTRIBUTE, None) is not None


class APIKeyAdmin(KeyColumns, ModelAdmin):
    """What both kinds share: columns, read-only fields, the add flow and revocation."""

    kind_label: ClassVar[str]
    list_display = KEY_COLUMNS
    list_filter = (StatusFilter,)
    search_fields = ("name", "hint")
    date_hierarchy = "created_at"
    readonly_fields = READ_ONLY_KEY_FIELDS
    fields = EDITABLE_KEY_FIELDS + READ_ONLY_KEY_FIELDS
    add_fieldsets = (
        (None, {"fields": ("name", "description", "expires_in", "expires_on", "nonce")}),
    )
    add_form = KeyAddForm
    created_template = "admin/phoenix_apikeys/key_created.html"

    class Media:
        css: ClassVar[dict[str, list[str]]] = {"all": ["phoenix_apikeys/admin.css"]}

    def get_fieldsets(self, request: HttpRequest, obj: AbstractAPIKey | None = None) -> Any:
        if obj is None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AbstractAPIKey], search_term: str
    ) -> tuple[QuerySet[AbstractAPIKey], bool]:
        # "phxs_…a1b2" as the changelist shows it finds the key by its hint.
        term = search_term.replace("...", "…").rsplit("…", 1)[-1]
        return super().get_search_results(request, queryset, term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not made_with_api_key(request) and super().has_add_permission(request)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if "_saveasnew" in request.POST:  # keys are born only through add_view
            raise PermissionDenied
        return super().change_view(request, object_id, form_url, extra_context)

    @refused_when_cache_unreachable
    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().delete_view(request, *args, **kwargs)

    @refused_when_cache_unreachable
    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changelist_view(request, *args, **kwargs)

    # The add flow ---------------------------------------------------------------------------

    def owner_fields(self, request: HttpRequest) -> dict[str, Any]:
        raise NotImplementedError

    def acts_as(self, request: HttpRequest) -> str:
        raise NotImplementedError

    @method_decorator(sensitive_variables())
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            initial = {"nonce": new_nonce(), "expires_in": default_expiry_choice()}
            return self.render_add_form(request, self.add_form(initial=initial), form_url)
        if nonce_was_used(request, request.POST.get("nonce", "")):
            return self.refuse_replay(request)
        form = self.add_form(request.POST)
        if not form.is_valid():
            return self.render_add_form(request, form, form_url)
        try:
            key, plaintext = self.create_key(request, form)
        except (ValidationError, MissingSecretError) as error:
            problems = error.messages if isinstance(error, ValidationError) else [str(error)]
            form.add_error(None, problems)
            return self.render_add_form(request, form, form_url)
        return self.render_created(request, key, plaintext)

    def create_key(self, request: HttpRequest, form: KeyAddForm) -> tuple[AbstractAPIKey, str]:
        data = form.cleaned_data
        with transaction.atomic():
            key, plaintext = self.model._default_manager.create_key(
                name=data["name"],
                description=data["description"],
                expires_at=data["expires_at"],
                **self.owner_fields(request),
            )
            self.log_addition(request, key, [{"added": {}}])
        record_nonce(request, data["nonce"])
        return key, plaintext

    def refuse_replay(self, request: HttpRequest) -> HttpResponse:
        self.message_user(
            request,
            "That key was already created and its value is not shown again. "
            "If it was not copied, revoke it and create a new one.",
            messages.WARNING,
        )
        return HttpResponseRedirect(reverse(self.url_name("changelist")))

    def render_add_form(
        self, request: HttpRequest, form: KeyAddForm, form_url: str
    ) -> HttpResponse:
        # AdminForm and AdminErrorList render any Form; the stubs ask for a ModelForm.
        admin_form = helpers.AdminForm(form, list(self.add_fieldsets), {}, model_admin=self)  # type: ignore[arg-type]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Add {self.model._meta.verbose_name}",
            "subtitle": None,
            "adminform": admin_form,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),  # type: ignore[arg-type]
            "preserved_filters": self.get_preserved_filters(request),
            "acts_as": self.acts_as(request),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    def render_created(
        self, request: HttpRequest, key: AbstractAPIKey, plaintext: str
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"{self.kind_label} created",
            "opts": self.model._meta,
            "key": key,
            "plaintext": plaintext,
            "kind_label": self.kind_label,
            "acts_as": self.acts_as(request),
            "has_view_permission": self.has_view_permission(request),
            "changelist_url": reverse(self.url_name("changelist")),
        }
        response = TemplateResponse(request, self.created_template, context)
        patch_cache_control(response, no_store=True, no_cache=True, private=True, max_age=0)
        response["Referrer-Policy"] = "no-referrer"
        return response

    def url_name(self, view: str) -> str:
        return f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{view}"


@admin.register(SystemKey)
class SystemKeyAdmin(APIKeyAdmin):
    kind_label = "System API key"
    list_display = (*KEY_COLUMNS, "created_by")
    list_select_related = ("created_by",)
    readonly_fields = (*READ_ONLY_KEY_FIELDS, "created_by")
    fields = (*EDITABLE_KEY_FIELDS, *READ_ONLY_KEY_FIELDS, "created_by")

    def owner_fields(self, request: HttpRequest) -> dict[str, Any]:
        return {"created_by": request.user}

    def acts_as(self, request: HttpRequest) -> str:
        return f"the system user “{phoenix_settings.SYSTEM_USERNAME}”"


@admin.register(UserKey)
class UserKeyAdmin(APIKeyAdmin):
    """Staff see and create their own keys; the full inventory needs ``view_all_userkeys``."""

    kind_label = "User API key"
    list_select_related = ("user",)
    readonly_fields = (*READ_ONLY_KEY_FIELDS, "user")
    fields = (*EDITABLE_KEY_FIELDS, *READ_ONLY_KEY_FIELDS, "user")

    def get_list_display(self, request: HttpRequest) -> Any:
        if sees_all_user_keys(request):
            return (*KEY_COLUMNS, "user")
        return self.list_display

    def get_search_fields(self, request: HttpRequest) -> Any:
        if sees_all_user_keys(request):
            return (*self.search_fields, f"user__{get_user_model().USERNAME_FIELD}")
        return self.search_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserKey]:
        queryset: QuerySet[UserKey] = super().get_queryset(request)
        if sees_all_user_keys(request):
            return queryset
        own: QuerySet[UserKey] = queryset.filter(user=request.user.pk)
        return own

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not sees_all_user_keys(request):
            extra_context = {"title": "Your API keys", **(extra_context or {})}
        response: HttpResponse = super().changelist_view(request, extra_context)
        return response

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_keys_of(request, None if obj is None else obj.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_keys_of(request, None if obj is None else obj.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Owners (and superusers) may rename; ``view_all_userkeys`` sees and revokes only."""
        if obj is None:
            return self.has_module_permission(request)
        return bool(obj.user_id == request.user.pk or request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request) and not made_with_api_key(request)

    def owner_fields(self, request: HttpRequest) -> dict[str, Any]:
        return {"user": request.user}

    def acts_as(self, request: HttpRequest) -> str:
        return f"you (“{request.user.get_username()}”)"


def sees_all_user_keys(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(VIEW_ALL_USER_KEYS))


def may_manage_keys_of(request: HttpRequest, owner: Any) -> bool:
    """See and revoke: one's own keys, or anyone's with ``view_all_userkeys``."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    return owner is None or owner.pk == user.pk or sees_all_user_keys(request)


# The host's user admin ------------------------------------------------------------------------


class UserKeyInline(KeyColumns, TabularInline):
    """A user's keys on their change page: read-only, each with a Delete (revoke) box."""

    model = UserKey
    fk_name = "user"
    extra = 0
    fields = readonly_fields = KEY_COLUMNS
    verbose_name_plural = "API keys (tick “Delete?” and save to revoke)"

    class Media:
        css: ClassVar[dict[str, list[str]]] = {"all": ["phoenix_apikeys/admin.css"]}

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

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


class SystemUserProtection:
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
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "password"]})
            for name, options in fieldsets
        ]

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        user = self.get_object(request, unquote(id))  # type: ignore[attr-defined]
        if user is not None and _is_system_user(user):
            messages.error(request, "The system user cannot be given a password.")
            opts, site = user._meta, self.admin_site.name  # type: ignore[attr-defined]
            change = f"{site}:{opts.app_label}_{opts.model_name}_change"
            return HttpResponseRedirect(reverse(change, args=[user.pk]))
        return super().user_change_password(request, id, form_url)  # type: ignore[misc]

    @refused_when_cache_unreachable
    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().delete_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    @refused_when_cache_unreachable
    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    @refused_when_cache_unreachable
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if request.method == "GET" and user is not None and _is_system_user(user):
            messages.info(request, SYSTEM_USER_NOTE)
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc,no-any-return]


def attach_to_user_admin(site: admin.AdminSite = admin.site) -> bool:
    """Add ``UserKeyInline`` and ``SystemUserProtection`` to the registered user admin when it
    is Django's ``UserAdmin`` or a subclass; True when attached. Called from ``ready()``."""
    user_model = get_user_model()
    model_admin = site._registry.get(user_model)
    if model_admin is None or not isinstance(model_admin, UserAdmin):
        return False
    if isinstance(model_admin, SystemUserProtection):
        return True
    admin_class = type(model_admin)
    inlines = list(admin_class.inlines)
    if UserKeyInline not in inlines:
        inlines.append(UserKeyInline)
    namespace = {"inlines": inlines, "__module__": admin_class.__module__}
    protected = type(admin_class.__name__, (SystemUserProtection, admin_class), namespace)
    site.unregister(user_model)
    site.register(user_model, protected)
    return True
