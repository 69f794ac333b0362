"""DRF permission classes for who may do what (the README's principals), for host views."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import SystemKey, UserKey
from .verification import PRINCIPAL_ATTRIBUTE, AdminSecret


def credential_of(request: Request) -> Any:
    """``request.auth``; or, when it is None, the key APIKeyMiddleware verified for this very
    user. An authentication class listed before ours (SessionAuthentication) takes a request the
    middleware authenticated as its own and answers ``(request.user, None)``: the key is then
    known only to the middleware, and without it a valid system key would fail IsSystemKey and a
    key could pass for a person."""
    auth = request.auth
    if auth is not None:
        return auth
    principal = getattr(request, PRINCIPAL_ATTRIBUTE, None)
    if principal is not None and principal[0] is request.user:
        return principal[1]
    return None


def is_admin_secret(request: Request) -> bool:
    return isinstance(credential_of(request), AdminSecret)


def is_api_key(request: Request) -> bool:
    """Any key or the admin secret: a machine credential, which may never mint keys."""
    return isinstance(credential_of(request), (SystemKey, UserKey, AdminSecret))


def is_admin(request: Request) -> bool:
    """A superuser acting in person or through their own user key; never a system key."""
    user = request.user
    return bool(user and user.is_authenticated and user.is_superuser) and not isinstance(
        credential_of(request), SystemKey
    )


class IsAdminOrAdminSecret(BasePermission):
    message = _("Only an administrator or the admin secret may do this.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_admin_secret(request) or is_admin(request)


class IsAdminSecret(BasePermission):
    message = _("Only the admin secret may do this.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_admin_secret(request)


class IsSystemKey(BasePermission):
    message = _("Only a system API key may do this.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(credential_of(request), SystemKey)


class IsUserKey(BasePermission):
    message = _("Only a user API key may do this.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(credential_of(request), UserKey)


class IsHumanLogin(BasePermission):
    """An authenticated person (session or basic auth), not any kind of API key."""

    message = _("API keys cannot do this; log in as a person.")
    ADMIN_SECRET_MESSAGE = _(
        "The admin secret acts as the system user, which owns no user keys; log in as a person."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(credential_of(request), AdminSecret):
            # Said per request: the admin secret is not an API key, and this is why it is refused.
            self.message = self.ADMIN_SECRET_MESSAGE
            return False
        user = request.user
        return bool(user and user.is_authenticated) and not is_api_key(request)


# The model permissions that make a staff user an administrator of keys.
VIEW_SYSTEM_KEYS = "phoenix_apikeys.view_systemkey"
ADD_SYSTEM_KEYS = "phoenix_apikeys.add_systemkey"
DELETE_SYSTEM_KEYS = "phoenix_apikeys.delete_systemkey"
VIEW_ALL_USER_KEYS = "phoenix_apikeys.view_all_userkeys"


def has_admin_permission(request: Request, permission: str) -> bool:
    """The admin secret, or an admin in person or through their own user key: a superuser, or a
    staff user holding ``permission``. A system key is never an admin."""
    if is_admin_secret(request):
        return True
    if not authenticated_not_as_system_key(request):
        return False
    user = request.user
    return bool(user.is_superuser or (user.is_staff and user.has_perm(permission)))


def authenticated_not_as_system_key(request: Request) -> bool:
    """Someone authenticated, by any means but a system key (which manages no keys)."""
    user = request.user
    return bool(user and user.is_authenticated) and not isinstance(
        credential_of(request), SystemKey
    )


class CanViewSystemKeys(BasePermission):
    message = _("Only an administrator or the admin secret may list system keys.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_admin_permission(request, VIEW_SYSTEM_KEYS)


class CanCreateSystemKeys(BasePermission):
    """The admin secret, or an admin logged in as a person: keys cannot mint keys."""

    message = _(
        "Only an administrator logged in as a person, or the admin secret, may create system "
        "keys; API keys cannot create keys."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        if is_admin_secret(request):
            return True
        return not is_api_key(request) and has_admin_permission(request, ADD_SYSTEM_KEYS)


class CanDeleteSystemKeys(BasePermission):
    message = _("Only an administrator or the admin secret may delete system keys.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_admin_permission(request, DELETE_SYSTEM_KEYS)


class CanViewAllUserKeys(BasePermission):
    message = _("Only an administrator or the admin secret may list every user's keys.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_admin_permission(request, VIEW_ALL_USER_KEYS)


class IsNotSystemKey(BasePermission):
    """Any authenticated caller except a system key, which has no key-management authority."""

    message = _("System API keys have no key-management authority.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return authenticated_not_as_system_key(request)


class IsNotScopedKey(BasePermission):
    """Anything but a scoped key: a key that may do less than its owner never manages keys."""

    message = _("A scoped key cannot manage API keys.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return not getattr(credential_of(request), "scopes", "")
