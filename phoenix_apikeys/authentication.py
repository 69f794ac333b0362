"""DRF authentication: ``Authorization: Bearer <key or admin secret>``."""

from __future__ import annotations

from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from .conf import phoenix_settings
from .verification import (
    PRINCIPAL_ATTRIBUTE,
    CredentialRejected,
    Principal,
    credential_from_header,
    verify_credential,
)


class APIKeyAuthentication(BaseAuthentication):
    """Authenticates system keys, user keys and the admin secret through ``verify_credential``."""

    @method_decorator(sensitive_variables())
    def authenticate(self, request: Request) -> Principal | None:
        principal: Principal | None = getattr(request._request, PRINCIPAL_ATTRIBUTE, None)
        if principal is not None:
            return principal
        try:
            credential = credential_from_header(request.META.get("HTTP_AUTHORIZATION"))
            if credential is None:
                return None
            return verify_credential(credential)
        except CredentialRejected as error:
            raise exceptions.AuthenticationFailed(error.detail) from None

    def authenticate_header(self, request: Request) -> str:
        return f'{phoenix_settings.AUTH_HEADER_KEYWORD} realm="api"'
