"""The admins of system and user keys: lists, read-only details, revocation and the add flow
(disabling and enabling are ``state``'s).

A new key goes through Django's own add flow (``changeform_view``): the add form is a ModelForm
the model validates, ``save_model`` issues the key and ``response_add`` shows it. It is shown
once, in the response to the POST that created it (never via a redirect, the messages
framework, the session or a URL); the form's one-time nonce turns a reload of that response
into a redirect that creates nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from ..cache import CacheUnreachable
from ..conf import phoenix_settings
from ..models import AbstractAPIKey, MissingSecretError, UserKey, system_user
from ..rules import duration_text
from .access import (
    RefusesUnheardRevocations,
    audited,
    made_with_api_key,
    may_manage_keys_of,
    sees_all_user_keys,
)
from .columns import (
    EDITABLE_KEY_FIELDS,
    KEY_COLUMNS,
    READ_ONLY_KEY_FIELDS,
    KeyColumns,
    StatusFilter,
)
from .forms import ADD_FIELDSETS, KeyAddForm, initial_add_data, nonce_was_used, record_nonce
from .state import KeyState

if TYPE_CHECKING:  # the admin classes are generic only to the type checker
    from django_stubs_ext import StrOrPromise

    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin

# Request attributes: in memory for one request only, never in the session.
PLAINTEXT_ATTRIBUTE = "_phoenix_apikeys_plaintext"
REFUSAL_ATTRIBUTE = "_phoenix_apikeys_refusal"


class KeyRefused(Exception):
    """The manager refused a key the form had accepted; carried out of the atomic add view."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(error)
        self.error = error


class APIKeyAdmin(RefusesUnheardRevocations, KeyColumns, KeyState, ModelAdmin):
    """What both kinds share: columns, read-only fields, the add flow, revocation, and (from
    ``KeyState``) restrictions shown, disabling and enabling."""

    kind_label: ClassVar[StrOrPromise]
    list_display = KEY_COLUMNS
    list_filter = (StatusFilter,)
    search_fields = ("name", "hint")
    date_hierarchy = "created_at"
    readonly_fields = READ_ONLY_KEY_FIELDS
    fields = EDITABLE_KEY_FIELDS + READ_ONLY_KEY_FIELDS
    add_fieldsets = ADD_FIELDSETS
    add_form = KeyAddForm
    created_template = "admin/phoenix_apikeys/key_created.html"
    actions = ("rotate_selected", "disable_selected", "enable_selected")

    def get_fieldsets(self, request: HttpRequest, obj: AbstractAPIKey | None = None) -> Any:
        if obj is None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change, **kwargs)
        form: Any = super().get_form(request, obj, change, form=self.add_form, **kwargs)
        form.refusal = getattr(request, REFUSAL_ATTRIBUTE, None)  # a new class per call
        form.owner_permissions = tuple(sorted(self.scope_owner(request).get_all_permissions()))
        form.kind = self.model.kind
        return form

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, str | list[str]]:
        return initial_add_data(self.model.kind)  # nothing from the URL: the form is ours alone

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AbstractAPIKey], search_term: str
    ) -> tuple[QuerySet[AbstractAPIKey], bool]:
        # "phxs_…a1b2" as the changelist shows it finds the key by its hint.
        term = search_term.replace("...", "…").rsplit("…", 1)[-1]
        return super().get_search_results(request, queryset, term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not made_with_api_key(request) and super().has_add_permission(request)

    def lookup_allowed(self, lookup: str, value: Any, request: Any = None) -> bool:
        # ?digest__startswith=... would read a key's digest out one character at a time.
        if lookup.split("__")[0] == "digest":
            return False
        # Django 5.0 added ``request``; 4.2 calls (and defines) this with two arguments.
        extra = () if request is None else (request,)
        return bool(super().lookup_allowed(lookup, value, *extra))

    def change_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "_saveasnew" in request.POST:  # keys are born only through add_view
            raise PermissionDenied
        try:
            return super().change_view(request, *args, **kwargs)
        except self.model.DoesNotExist:  # revoked between the form's load and its save
            self.message_user(
                request,
                gettext(
                    "That key was revoked meanwhile; nothing was saved. A revoked key cannot be "
                    "edited or brought back."
                ),
                messages.ERROR,
            )
            return HttpResponseRedirect(self.admin_url("changelist"))

    # The add flow ---------------------------------------------------------------------------

    def owner_fields(self, request: HttpRequest) -> dict[str, Any]:
        raise NotImplementedError

    def scope_owner(self, request: HttpRequest) -> Any:
        """Whose authority the new key carries, and so which permissions it may be scoped to."""
        raise NotImplementedError

    def acts_as(self, request: HttpRequest) -> str:
        raise NotImplementedError

    @audited
    @sensitive_variables()
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST" and nonce_was_used(request):
            return self.refuse_replay(request)
        context = {
            "acts_as": self.acts_as(request),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        try:
            return super().add_view(request, form_url, context)
        except KeyRefused as refused:
            # Nothing was saved (changeform_view is atomic): the same form again, the
            # manager's errors on their fields; the form now fails, so no second attempt.
            setattr(request, REFUSAL_ATTRIBUTE, refused.error)
            return super().add_view(request, form_url, context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        try:
            _key, plaintext = self.create_key(request, form)
        except ValidationError as error:
            raise KeyRefused(error) from None
        except MissingSecretError as error:
            raise KeyRefused(ValidationError(str(error))) from None
        # For response_add, which Django calls with the saved key only.
        setattr(request, PLAINTEXT_ATTRIBUTE, plaintext)

    def create_key(self, request: HttpRequest, form: KeyAddForm) -> tuple[AbstractAPIKey, str]:
        key: AbstractAPIKey = form.instance
        for name, value in self.owner_fields(request).items():
            setattr(key, name, value)
        plaintext = type(key)._default_manager.issue(key)
        record_nonce(request, form.cleaned_data["nonce"])
        return key, plaintext

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        plaintext: str = vars(request).pop(PLAINTEXT_ATTRIBUTE)
        return self.render_created(request, obj, plaintext)

    def refuse_replay(self, request: HttpRequest) -> HttpResponse:
        self.message_user(
            request,
            gettext(
                "That key was already created and its value is not shown again. "
                "If it was not copied, revoke it and create a new one."
            ),
            messages.WARNING,
        )
        return HttpResponseRedirect(self.admin_url("changelist"))

    # Rotation ------------------------------------------------------------------------------

    def may_rotate(self, request: HttpRequest, key: Any) -> bool:
        """Beyond the add permission the action requires: whose keys this request may rotate."""
        return True

    def rotation_fields(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    @admin.action(description=_("Rotate selected key"), permissions=["add"])
    @sensitive_variables()
    def rotate_selected(
        self, request: HttpRequest, queryset: QuerySet[AbstractAPIKey]
    ) -> HttpResponse | None:
        """One key: a new one like it, shown once; the old one keeps working for the default
        grace period (ROTATION_GRACE_PERIOD)."""
        selected = list(queryset[:2])
        if len(selected) != 1:
            self.message_user(
                request,
                gettext(
                    "Select exactly one key to rotate: each new key is shown once, on its own page."
                ),
                messages.WARNING,
            )
            return None
        old = selected[0]
        if not self.may_rotate(request, old):
            self.message_user(
                request, gettext("You may rotate only your own keys."), messages.ERROR
            )
            return None
        replaced = {"replaces": str(old), "replaces_id": old.key_id}
        manager: Any = type(old)._default_manager
        try:
            key, plaintext = manager.rotate(old, **self.rotation_fields(request))
        except ValidationError as error:
            problem = " ".join(error.messages)
        except (MissingSecretError, CacheUnreachable) as error:
            problem = str(error)
        except type(old).DoesNotExist:
            problem = gettext("That key was revoked meanwhile.")
        else:
            ends = old.expires_at
            replaced["replaced_until"] = ends if ends and ends > timezone.now() else None
            return self.render_created(request, key, plaintext, replaced)
        self.message_user(request, problem, messages.ERROR)
        return None

    def render_created(
        self,
        request: HttpRequest,
        key: AbstractAPIKey,
        plaintext: str,
        replaced: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if replaced is not None:  # a rotation: the page names the key it replaces
            replaced["grace_period"] = duration_text(phoenix_settings.ROTATION_GRACE_PERIOD)
        context = {
            **self.admin_site.each_context(request),
            **(replaced or {}),
            "title": (gettext("%(kind)s rotated") if replaced else gettext("%(kind)s created"))
            % {"kind": self.kind_label},
            "opts": self.model._meta,
            "key": key,
            "plaintext": plaintext,
            "kind_label": self.kind_label,
            "prefix": phoenix_settings.prefixes.of(key.kind),
            "keyword": phoenix_settings.AUTH_HEADER_KEYWORD,
            "acts_as": self.acts_as(request),
            "has_view_permission": self.has_view_permission(request),
            "changelist_url": self.admin_url("changelist"),
        }
        response = TemplateResponse(request, self.created_template, context)
        patch_cache_control(response, no_store=True, no_cache=True, private=True, max_age=0)
        response["Referrer-Policy"] = "no-referrer"
        return response


class SystemKeyAdmin(APIKeyAdmin):
    kind_label = _("System API key")
    list_display = (*KEY_COLUMNS, "created_by")
    list_select_related = ("created_by",)
    readonly_fields = (*READ_ONLY_KEY_FIELDS, "created_by")
    fields = (*EDITABLE_KEY_FIELDS, *READ_ONLY_KEY_FIELDS, "created_by")

    def owner_fields(self, request: HttpRequest) -> dict[str, Any]:
        return {"created_by": request.user}

    def rotation_fields(self, request: HttpRequest) -> dict[str, Any]:
        return {"created_by": request.user}

    def scope_owner(self, request: HttpRequest) -> Any:
        return system_user()

    def acts_as(self, request: HttpRequest) -> str:
        return gettext("the system user “%(name)s”") % {"name": phoenix_settings.SYSTEM_USERNAME}


class UserKeyAdmin(APIKeyAdmin):
    """Staff see and create their own keys; the full inventory needs ``view_all_userkeys``."""

    kind_label = _("User API key")
    list_select_related = ("user",)
    readonly_fields = (*READ_ONLY_KEY_FIELDS, "user")
    fields = (*EDITABLE_KEY_FIELDS, *READ_ONLY_KEY_FIELDS, "user")

    def get_list_display(self, request: HttpRequest) -> Any:
        if sees_all_user_keys(request):
            return (*KEY_COLUMNS, "owner")
        return self.list_display

    @admin.display(description=_("owner"), ordering=f"user__{get_user_model().USERNAME_FIELD}")
    def owner(self, key: UserKey) -> str:
        return str(key.user.get_username())

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
            extra_context = {"title": gettext("Your API keys"), **(extra_context or {})}
        response: HttpResponse = super().changelist_view(request, extra_context)
        return response

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_manage_keys_of(request, None if obj is None else obj.user)

    has_delete_permission = has_view_permission  # who sees a key may revoke it

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Owners (and superusers) may rename; ``view_all_userkeys`` sees and revokes only."""
        if obj is None:
            return self.has_module_permission(request)
        return bool(obj.user_id == request.user.pk or request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request) and not made_with_api_key(request)

    def owner_fields(self, request: HttpRequest) -> dict[str, Any]:
        return {"user": request.user}

    def may_rotate(self, request: HttpRequest, key: Any) -> bool:
        # Seeing everyone's keys is no right to mint a key that acts as someone else.
        return bool(key.user_id == request.user.pk)

    def scope_owner(self, request: HttpRequest) -> Any:
        return request.user

    def acts_as(self, request: HttpRequest) -> str:
        return gettext("you (“%(name)s”)") % {"name": request.user.get_username()}
