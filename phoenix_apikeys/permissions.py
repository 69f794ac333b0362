"""DRF permission classes that express SPEC section 4 in a host project's own views."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import SystemKey, UserKey
from .verification import AdminSecret


def is_admin_secret(request: Request) -> bool:
    return isinstance(request.auth, AdminSecret)


def is_api_key(request: Request) -> bool:
    """Any key or the admin secret: a machine credential, which may never mint keys."""
    return isinstance(request.auth, (SystemKey, UserKey, AdminSecret))


def is_admin(request: Request) -> bool:
    """A superuser acting in person or through their own user key; never a system key."""
    user = request.user
    return bool(user and user.is_authenticated and user.is_superuser) and not isinstance(
        request.auth, SystemKey
    )


class IsAdminOrAdminSecret(BasePermission):
    message = "Only an administrator or the admin secret may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_admin_secret(request) or is_admin(request)


class IsAdminSecret(BasePermission):
    message = "Only the admin secret may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_admin_secret(request)


class IsSystemKey(BasePermission):
    message = "Only a system API key may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, SystemKey)


class IsUserKey(BasePermission):
    message = "Only a user API key may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, UserKey)


class IsHumanLogin(BasePermission):
    """An authenticated person (session or basic auth), not any kind of API key."""

    message = "API keys cannot do this; log in as a person."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated) and not is_api_key(request)
