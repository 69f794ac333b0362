"""The key-management routes of the Phoenix-compatible REST API (see the README)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import SystemKey, UserKey
from ..permissions import (
    VIEW_ALL_USER_KEYS,
    CanCreateSystemKeys,
    CanDeleteSystemKeys,
    CanViewAllUserKeys,
    CanViewSystemKeys,
    IsHumanLogin,
    IsNotScopedKey,
    IsNotSystemKey,
    has_admin_permission,
)
from ..verification import AdminSecret
from .base import (
    CREATION,
    DELETION,
    FORBIDDEN,
    SWITCH,
    UNAUTHENTICATED,
    KeyAPIView,
    create,
    document,
    find_key,
    interpolate_lazy,
    may_create,
    page,
    revoke,
    rotate,
    rotation,
    switch,
)
from .serializers import (
    CurrentUserEnvelopeSerializer,
    ErrorSerializer,
    InventoryEnvelopeSerializer,
    KeyListEnvelopeSerializer,
    PageQuerySerializer,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class CurrentUserView(KeyAPIView):
    """The authenticated caller: any person or credential."""

    @document(
        "getViewer",
        _("Who am I"),
        responses={200: CurrentUserEnvelopeSerializer, **UNAUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        body = CurrentUserEnvelopeSerializer({"data": request.user}, context={"request": request})
        return Response(body.data)


class UserKeysView(KeyAPIView):
    """The caller's own user keys."""

    permissions_by_method = {"POST": [IsHumanLogin]}

    @document(
        "listUserApiKeys",
        _("List your own user keys"),
        description=_(
            "Newest first, with cursor pagination: pass next_cursor back as cursor. "
            "A system key or the admin secret owns no user keys: the list is empty."
        ),
        parameters=[PageQuerySerializer],
        responses={200: KeyListEnvelopeSerializer, 422: ErrorSerializer, **UNAUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        keys = UserKey.objects.filter(user=request.user.pk)
        if isinstance(request.auth, (SystemKey, AdminSecret)):
            keys = keys.none()
        return page(request, keys, UserKey.kind, KeyListEnvelopeSerializer)

    @document(
        "createUserApiKey",
        _("Create a user key for yourself"),
        description=may_create(_("Only a person logged in may do this")),
        **CREATION,
    )
    def post(self, request: Request) -> Response:
        return create(request, UserKey, user=request.user)


USER_KEY_AUTHORITY = _(
    "Your own, or anyone's for an administrator or the admin secret; "
    "a key that is not yours, or an id of another kind, is 404. System keys: 403."
)


class UserKeyView(KeyAPIView):
    """One user key, by its opaque id."""

    permissions_by_method = {"DELETE": [IsNotSystemKey, IsNotScopedKey]}

    @document(
        "deleteUserApiKey",
        _("Delete a user key"),
        description=USER_KEY_AUTHORITY,
        **DELETION,
    )
    def delete(self, request: Request, id: str) -> Response:
        return revoke(request, revocable_user_key(request, id))


def revocable_user_key(request: Request, id: str) -> UserKey:
    """A user key the caller may revoke (or disable): their own, or anyone's for an
    administrator or the admin secret; else 404."""
    key = find_key(UserKey, id)
    if key.user_id != request.user.pk and not has_admin_permission(request, VIEW_ALL_USER_KEYS):
        raise NotFound(gettext("No such API key."))
    return key


class UserKeyRotationView(KeyAPIView):
    """Replace one of the caller's own user keys."""

    permissions_by_method = {"POST": [IsHumanLogin]}

    @rotation(
        "rotateUserApiKey",
        _("Rotate one of your user keys"),
        _("Only its owner, logged in as a person, may do this"),
        _("Another user's key, or an id of another kind, is 404."),
    )
    def post(self, request: Request, id: str) -> Response:
        key = find_key(UserKey, id)
        if key.user_id != request.user.pk:  # nobody mints a key that acts as someone else
            raise NotFound(gettext("No such API key."))
        return rotate(request, key)


class UserKeyInventoryView(KeyAPIView):
    """Every user's keys, for administrators and the admin secret."""

    permissions_by_method = {"GET": [CanViewAllUserKeys]}

    @document(
        "listAllUserApiKeys",
        _("List every user's keys"),
        description=_("Newest first, with cursor pagination: pass next_cursor back as cursor."),
        parameters=[PageQuerySerializer],
        responses={200: InventoryEnvelopeSerializer, 422: ErrorSerializer, **FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        keys = UserKey.objects.select_related("user")
        return page(request, keys, UserKey.kind, InventoryEnvelopeSerializer)


class SystemKeysView(KeyAPIView):
    """System keys, for administrators and the admin secret."""

    permissions_by_method = {"GET": [CanViewSystemKeys], "POST": [CanCreateSystemKeys]}

    @document(
        "listSystemApiKeys",
        _("List system keys"),
        description=_("Newest first, with cursor pagination: pass next_cursor back as cursor."),
        parameters=[PageQuerySerializer],
        responses={200: KeyListEnvelopeSerializer, 422: ErrorSerializer, **FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        return page(request, SystemKey.objects.all(), SystemKey.kind, KeyListEnvelopeSerializer)

    @document(
        "createSystemApiKey",
        _("Create a system key"),
        description=may_create(_("An administrator logged in as a person, or the admin secret")),
        **CREATION,
    )
    def post(self, request: Request) -> Response:
        # created_by is audit only; the admin secret is recorded as the system user it acts as.
        return create(request, SystemKey, created_by=request.user)


SYSTEM_KEY_AUTHORITY = _(
    "Administrators and the admin secret; a scoped key is 403. A user key's id, or garbage, is 404."
)


class SystemKeyView(KeyAPIView):
    """One system key, by its opaque id."""

    permissions_by_method = {"DELETE": [IsNotScopedKey, CanDeleteSystemKeys]}

    @document(
        "deleteSystemApiKey",
        _("Delete a system key"),
        description=SYSTEM_KEY_AUTHORITY,
        **DELETION,
    )
    def delete(self, request: Request, id: str) -> Response:
        return revoke(request, find_key(SystemKey, id))


class SystemKeyRotationView(KeyAPIView):
    """Replace one system key."""

    permissions_by_method = {"POST": [CanCreateSystemKeys]}

    @rotation(
        "rotateSystemApiKey",
        _("Rotate a system key"),
        _("An administrator logged in as a person, or the admin secret"),
        _("A user key's id, or garbage, is 404."),
    )
    def post(self, request: Request, id: str) -> Response:
        # The caller is recorded as the new key's creator, as on creation.
        return rotate(request, find_key(SystemKey, id), created_by=request.user)


DISABLE = _(
    "Refused everywhere, as a revoked key is, until enabled again: the call returns once every "
    "server has dropped its copy. Reversible, unlike deletion. "
)
ENABLE = _("The key works again (unless expired). ")


def switch_view(
    model: type[UserKey] | type[SystemKey], *, disable: bool, summary: StrOrPromise
) -> type[KeyAPIView]:
    """The view that disables (or enables) one key of ``model``: who may delete it may."""
    deletion = UserKeyView if model is UserKey else SystemKeyView
    action = "disable" if disable else "enable"
    who = USER_KEY_AUTHORITY if model is UserKey else SYSTEM_KEY_AUTHORITY
    description = interpolate_lazy(
        "%(what)s%(who)s", {"what": DISABLE if disable else ENABLE, "who": who}
    )

    class SwitchView(KeyAPIView):
        permissions_by_method = {"POST": deletion.permissions_by_method["DELETE"]}

        @document(
            f"{action}{model.__name__[:-3]}ApiKey", summary, description=description, **SWITCH
        )
        def post(self, request: Request, id: str) -> Response:
            key = revocable_user_key(request, id) if model is UserKey else find_key(model, id)
            return switch(request, key, disable=disable)

    SwitchView.__name__ = SwitchView.__qualname__ = f"{model.__name__}{action.title()}View"
    return SwitchView


UserKeyDisableView = switch_view(UserKey, disable=True, summary=_("Disable a user key"))
UserKeyEnableView = switch_view(UserKey, disable=False, summary=_("Enable a user key"))
SystemKeyDisableView = switch_view(SystemKey, disable=True, summary=_("Disable a system key"))
SystemKeyEnableView = switch_view(SystemKey, disable=False, summary=_("Enable a system key"))
