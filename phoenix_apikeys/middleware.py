"""Key authentication for plain Django views; place it after AuthenticationMiddleware, and
use this module's CsrfViewMiddleware in place of Django's.

Keys are credentials for APIs, not for the Django admin: a request authenticated by a key or the
admin secret is refused on every admin site's pages, wherever this middleware stands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.middleware import csrf
from django.urls import Resolver404, resolve
from django.utils.translation import gettext
from django.views.decorators.debug import sensitive_variables

from .http import (
    REFUSALS,
    attach,
    attached,
    averify_request,
    json_response,
    refusal_response,
    verify_request,
)
from .verification import Principal

# Every AdminSite's URLs are included under this application namespace, whatever the site's name.
ADMIN_APP_NAME = "admin"
# A view class with this attribute true takes no credential (the leak report): an Authorization
# header sent to it is neither verified, nor refused, nor counted as a failure.
TAKES_NO_CREDENTIAL = "takes_no_credential"
NO_CREDENTIAL_PATH_END = "api_keys/revoke"


class APIKeyMiddleware:
    """Sets ``request.user`` and ``request.auth`` from a Bearer key. A bad key gets 401, a
    read-only key asking for another method 403, too many failures from one address 429, and a
    database that cannot be asked 503: all JSON. Sync or async, as the handler around it is
    (under ASGI a key held in this process's memory is verified with no thread hop)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        if request.META.get("HTTP_AUTHORIZATION") and takes_no_credential(request):
            return self.get_response(request)
        try:
            authenticate(request, verify_request(request))
        except REFUSALS as error:
            return refusal_response(error)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("HTTP_AUTHORIZATION") and takes_no_credential(request):
            return await self.get_response(request)  # type: ignore[no-any-return]
        try:
            authenticate(request, await averify_request(request))
        except REFUSALS as error:
            return refusal_response(error)
        return await self.get_response(request)  # type: ignore[no-any-return]

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or ADMIN_APP_NAME not in match.app_names:
            return None
        if attached(request) is None:
            return None
        return json_response(
            gettext("API keys cannot open the Django admin; log in with a password."), status=403
        )


def takes_no_credential(request: HttpRequest) -> bool:
    """Whether the request's route takes no credential. Resolving a path costs about a third of
    a key's verification, so only a path shaped like such a route (the leak report's) is
    resolved to make sure."""
    if not request.path_info.rstrip("/").endswith(NO_CREDENTIAL_PATH_END):
        return False
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None)
    return bool(getattr(view_class, TAKES_NO_CREDENTIAL, False))


@sensitive_variables()
def authenticate(request: HttpRequest, principal: Principal | None) -> None:
    if principal is None:
        return
    request.user, request.auth = principal  # type: ignore[attr-defined]
    attach(request, principal)


class CsrfViewMiddleware(csrf.CsrfViewMiddleware):
    """Django's CSRF protection, but for a request APIKeyMiddleware authenticated: a browser
    never sends a header credential on its own, so a forged request cannot carry one. Sessions
    keep the full check. It takes the place of ``django.middleware.csrf.CsrfViewMiddleware``."""

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponseForbidden | None:
        if attached(request) is not None:
            return None
        return super().process_view(request, view, args, kwargs)
