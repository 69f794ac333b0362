"""Key authentication for plain Django views; place it after AuthenticationMiddleware."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from .conf import phoenix_settings
from .verification import (
    PRINCIPAL_ATTRIBUTE,
    CredentialRejected,
    credential_from_header,
    verify_credential,
)


class APIKeyMiddleware:
    """Sets ``request.user`` and ``request.auth`` from a Bearer key; a bad key gets 401."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            credential = credential_from_header(request.META.get("HTTP_AUTHORIZATION"))
            if credential is not None:
                principal = verify_credential(credential)
                request.user, request.auth = principal  # type: ignore[attr-defined]
                setattr(request, PRINCIPAL_ATTRIBUTE, principal)
                # A header credential is not sent by browsers on their own, so CSRF cannot apply.
                request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        except CredentialRejected as error:
            return JsonResponse(
                {"detail": error.detail},
                status=401,
                headers={"WWW-Authenticate": f'{phoenix_settings.AUTH_HEADER_KEYWORD} realm="api"'},
            )
        return self.get_response(request)
