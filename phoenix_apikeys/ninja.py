"""django-ninja authentication: ``auth=APIKeyAuth()`` on sync operations, ``AsyncAPIKeyAuth()``
on async ones; both verify through ``http.verify_request`` (or its async twin), as the DRF class
and the middleware do.

``handle_refusals(api)`` once per ``NinjaAPI`` makes its refusals the same responses the DRF
class and the middleware send (their headers included: ``WWW-Authenticate``, ``Retry-After``).
Without it the status and the detail are the same, but ninja sends no header with them.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.debug import sensitive_variables
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.security.base import AuthBase
from rest_framework.exceptions import NotAuthenticated

from .http import REFUSALS, attach, attached, averify_request, refusal_response, verify_request
from .verification import CredentialRejected, Principal

# DRF's words for a request that presents no credential (translated by DRF's own catalog).
NO_CREDENTIAL = NotAuthenticated.default_detail


class RefusedCredential(HttpError):
    """A credential refused (401), out of scope (403), throttled (429) or not verifiable now
    (503); ``response`` is the answer the middleware would have sent."""

    def __init__(self, error: Exception) -> None:
        self.response = refusal_response(error)
        detail = getattr(error, "detail", None) or str(error)
        super().__init__(self.response.status_code, str(detail))


def handle_refusals(api: NinjaAPI) -> NinjaAPI:
    """Answer refusals on ``api`` exactly as the middleware and the DRF class do, and a request
    with no credential as DRF does (401 challenging our keyword)."""
    api.add_exception_handler(RefusedCredential, _refusal)
    api.add_exception_handler(AuthenticationError, _no_credential)
    return api


def _no_credential(
    request: HttpRequest, error: AuthenticationError | type[AuthenticationError]
) -> HttpResponse:
    return refusal_response(CredentialRejected("no credential", str(NO_CREDENTIAL)))


def _refusal(
    request: HttpRequest, error: RefusedCredential | type[RefusedCredential]
) -> HttpResponse:
    assert isinstance(error, RefusedCredential)  # ninja hands handlers the instance raised
    return error.response


class _Bearer(AuthBase):
    """OpenAPI: an HTTP bearer scheme, as ninja's ``HttpBearer`` declares it."""

    openapi_type = "http"
    openapi_scheme = "bearer"


class APIKeyAuth(_Bearer):
    """System keys, user keys and the admin secret for sync ninja operations: ``request.auth``
    is the key (or ``AdminSecret``), ``request.user`` the user it acts as."""

    @sensitive_variables()
    def __call__(self, request: HttpRequest) -> Any:
        principal = attached(request)
        if principal is None:
            try:
                principal = verify_request(request)
            except REFUSALS as error:
                raise RefusedCredential(error) from None
        return _authenticated(request, principal)


class AsyncAPIKeyAuth(_Bearer):
    """``APIKeyAuth`` for async ninja operations: a key held in this process's memory is
    verified on the event loop, anything else in a thread."""

    def __init__(self) -> None:
        super().__init__()
        self.is_async = True

    async def __call__(self, request: HttpRequest) -> Any:
        principal = attached(request)
        if principal is None:
            try:
                principal = await averify_request(request)
            except REFUSALS as error:
                raise RefusedCredential(error) from None
        return _authenticated(request, principal)


def _authenticated(request: HttpRequest, principal: Principal | None) -> Any:
    """ninja sets ``request.auth`` to what this returns; None leaves the request to the next
    authentication of the operation (or to ninja's 401)."""
    if principal is None:
        return None
    request.user, auth = principal
    attach(request, principal)
    return auth
