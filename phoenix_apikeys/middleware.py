"""Key authentication for plain Django views; place it after AuthenticationMiddleware.

Keys are credentials for APIs, not for the Django admin: a request authenticated by a key or the
admin secret is refused on every admin site's pages, wherever this middleware stands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.debug import sensitive_variables

from .conf import phoenix_settings
from .http import PRINCIPAL_ATTRIBUTE, verify_request
from .scopes import OutOfScope
from .throttle import TooManyFailures
from .verification import CredentialRejected, VerificationUnavailable

# Every AdminSite's URLs are included under this application namespace, whatever the site's name.
ADMIN_APP_NAME = "admin"
# A view class with this attribute true takes no credential (the leak report): an Authorization
# header sent to it is neither verified, nor refused, nor counted as a failure.
TAKES_NO_CREDENTIAL = "takes_no_credential"
NO_CREDENTIAL_PATH_END = "api_keys/revoke"


class APIKeyMiddleware:
    """Sets ``request.user`` and ``request.auth`` from a Bearer key. A bad key gets 401, a
    read-only key asking for another method 403, too many failures from one address 429, and a
    database that cannot be asked 503: all JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("HTTP_AUTHORIZATION") and takes_no_credential(request):
            return self.get_response(request)
        try:
            authenticate(request)
        except CredentialRejected as error:
            return JsonResponse(
                {"detail": error.detail},
                status=401,
                headers={"WWW-Authenticate": f'{phoenix_settings.AUTH_HEADER_KEYWORD} realm="api"'},
            )
        except OutOfScope as error:
            return JsonResponse({"detail": error.detail}, status=403)
        except (TooManyFailures, VerificationUnavailable) as error:
            status = 429 if isinstance(error, TooManyFailures) else 503
            return JsonResponse(
                {"detail": f"{error} Retry in {error.retry_after} seconds."},
                status=status,
                headers={"Retry-After": str(error.retry_after)},
            )
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or ADMIN_APP_NAME not in match.app_names:
            return None
        if getattr(request, PRINCIPAL_ATTRIBUTE, None) is None:
            return None
        return JsonResponse(
            {"detail": "API keys cannot open the Django admin; log in with a password."},
            status=403,
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
def authenticate(request: HttpRequest) -> None:
    principal = verify_request(request)
    if principal is None:
        return
    request.user, request.auth = principal  # type: ignore[attr-defined]
    setattr(request, PRINCIPAL_ATTRIBUTE, principal)
    # A header credential is not sent by browsers on their own, so CSRF cannot apply.
    request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
