"""DRF authentication: ``Authorization: Bearer <key or admin secret>``."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from .conf import phoenix_settings
from .http import attached, verify_request
from .outage import RETRY_AFTER_UNAVAILABLE, VerificationUnavailable, database_failed
from .restrictions import RateLimited
from .scopes import OutOfScope
from .throttle import TooManyFailures
from .verification import CredentialRejected, Principal


class Unavailable(exceptions.APIException):
    """503 with Retry-After (DRF's exception handler sends ``wait`` as Retry-After)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("API keys cannot be verified right now: the database is unavailable.")

    def __init__(self, wait: int) -> None:
        super().__init__()
        self.wait = wait


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a JSON 503 with Retry-After when the database cannot be asked
    anywhere in a DRF view (SessionAuthentication loading a session, the view's own queries).

    REST_FRAMEWORK = {"EXCEPTION_HANDLER": "phoenix_apikeys.authentication.exception_handler"}
    """
    # Imported here: rest_framework.views imports this module through api_settings.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DatabaseError):
        database_failed(exc)
        exc = Unavailable(RETRY_AFTER_UNAVAILABLE)
    return with_headers(drf_exception_handler(exc, context), exc)


class RateLimitExceeded(exceptions.Throttled):
    """A key's own rate limit: 429 with Retry-After and ``headers`` (the RateLimit-* fields),
    which ``with_headers`` adds (this module's exception handler, and the app's own views)."""

    def __init__(self, error: RateLimited) -> None:
        super().__init__(wait=error.retry_after, detail=str(error))
        self.headers = error.headers


def with_headers(response: Response | None, exc: Exception) -> Response | None:
    if response is not None and isinstance(exc, RateLimitExceeded):
        for name, value in exc.headers.items():
            response[name] = value
    return response


class APIKeyAuthentication(BaseAuthentication):
    """Authenticates system keys, user keys and the admin secret through ``verify_credential``."""

    def authenticate(self, request: Request) -> Principal | None:
        # No local here holds the credential: verify_request's callees hide theirs.
        principal = attached(request)  # APIKeyMiddleware's, when it verified the request
        if principal is not None:
            return principal
        try:
            return verify_request(request)
        except CredentialRejected as error:
            raise exceptions.AuthenticationFailed(error.detail) from None
        except RateLimited as error:
            raise RateLimitExceeded(error) from None
        except TooManyFailures as error:
            raise exceptions.Throttled(wait=error.retry_after, detail=str(error)) from None
        except VerificationUnavailable as error:
            raise Unavailable(error.retry_after) from None
        except OutOfScope as error:
            raise exceptions.PermissionDenied(error.detail) from None

    def authenticate_header(self, request: Request) -> str:
        return f'{phoenix_settings.AUTH_HEADER_KEYWORD} realm="api"'
