"""Who may do what in the key admins and the user admin, and the refusal of unheard revocations."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from .. import audit
from ..cache import CacheUnreachable
from ..http import PRINCIPAL_ATTRIBUTE, client_address
from ..permissions import VIEW_ALL_USER_KEYS


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


def audited(view: Any) -> Any:
    """The key events the view records name the request's user and address (audit.acting)."""

    @functools.wraps(view)
    def audited_view(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with audit.acting(actor=request.user, source=client_address(request.META)):
            return view(self, request, *args, **kwargs)

    return audited_view


class RefusesUnheardRevocations:
    """Mixin for an admin whose delete and changelist (bulk delete, actions) views revoke or
    rotate keys: refused when the cache cannot hear of it, recorded as the request's user's."""

    @audited
    @refused_when_cache_unreachable
    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().delete_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    @audited
    @refused_when_cache_unreachable
    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]


def made_with_api_key(request: HttpRequest) -> bool:
    """Keys cannot mint keys: APIKeyMiddleware marks requests authenticated by a credential."""
    return getattr(request, PRINCIPAL_ATTRIBUTE, None) is not None


def sees_all_user_keys(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(VIEW_ALL_USER_KEYS))


def may_manage_keys_of(request: HttpRequest, owner: Any) -> bool:
    """See and revoke: one's own keys, or anyone's with ``view_all_userkeys``."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    return owner is None or owner.pk == user.pk or sees_all_user_keys(request)
