"""What the REST API's views share: documentation, errors, creation, rotation, paging and
revocation; the views are in ``views`` and ``leaks``, the routes in ``phoenix_apikeys.urls``.

Bodies are ``{"data": ...}``; a body or query that fails validation is 422 with a ``detail``
naming the field, set here so the host's exception handler stays untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.db.models import QuerySet
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, NotFound, ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..authentication import APIKeyAuthentication, with_headers
from ..cache import CacheUnreachable
from ..http import acting_for
from ..models import AbstractAPIKey, MissingSecretError
from ..outage import RETRY_AFTER_UNAVAILABLE, database_failed
from .serializers import (
    CreatedKeyEnvelopeSerializer,
    ErrorSerializer,
    KeyCreateRequestSerializer,
    KeyEnvelopeSerializer,
    KeyRotateRequestSerializer,
    PageQuerySerializer,
    RotatedKeyEnvelopeSerializer,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger("phoenix_apikeys")

ViewMethod = Callable[..., Any]
Decorator = Callable[[ViewMethod], ViewMethod]
KeyT = TypeVar("KeyT", bound=AbstractAPIKey)

# Every route may answer these; each route adds its own.
UNAUTHENTICATED = {401: ErrorSerializer}
FORBIDDEN = {401: ErrorSerializer, 403: ErrorSerializer}
CREATE_ERRORS = {**FORBIDDEN, 413: ErrorSerializer, 415: ErrorSerializer, 422: ErrorSerializer}


def _interpolate(text: StrOrPromise, values: dict[str, Any]) -> str:
    return str(text) % values


# ``_("... %(name)s ...") % values``, worked out when the schema is rendered (in the language of
# that request), not when this module is imported.
interpolate_lazy = lazy(_interpolate, str)


def document(
    operation_id: str, summary: StrOrPromise, *, id_path: bool = False, **kwargs: Any
) -> Decorator:
    """``extend_schema`` when drf-spectacular is installed (the [openapi] extra), else nothing.

    ``id_path`` describes the ``{id}`` in the route as the opaque key id it is.
    """
    try:
        from drf_spectacular.utils import OpenApiParameter, extend_schema
    except ImportError:  # pragma: no cover - exercised only without the extra
        return lambda method: method
    if id_path:
        kwargs["parameters"] = [
            OpenApiParameter(
                "id", str, OpenApiParameter.PATH, description=_("The key's opaque id, as listed.")
            )
        ]
    decorate: Decorator = extend_schema(
        operation_id=operation_id, summary=summary, tags=["API keys"], **kwargs
    )
    return decorate


# What the creation and deletion routes declare besides their ids and descriptions.
CREATION: dict[str, Any] = {
    "request": KeyCreateRequestSerializer,
    "responses": {201: CreatedKeyEnvelopeSerializer, **CREATE_ERRORS},
}
DELETION: dict[str, Any] = {
    "id_path": True,
    "responses": {204: None, 404: ErrorSerializer, **FORBIDDEN},
}
SWITCH: dict[str, Any] = {
    "id_path": True,
    "request": None,
    "responses": {200: KeyEnvelopeSerializer, 404: ErrorSerializer, **FORBIDDEN},
}


def may_create(who: StrOrPromise) -> StrOrPromise:
    return interpolate_lazy(
        _("%(who)s; API keys cannot create keys. The plaintext key is in this response only."),
        {"who": who},
    )


def rotation(
    operation_id: str, summary: StrOrPromise, who: StrOrPromise, not_found: StrOrPromise
) -> Decorator:
    """What both rotation routes declare: the creation response plus ``replaces``, and 404."""
    return document(
        operation_id,
        summary,
        id_path=True,
        description=interpolate_lazy(
            _(
                "The new key copies the old one's name, description and scopes; the old key "
                "keeps working for the grace period (0: revoked now). An expired key cannot be "
                "rotated (422). %(may_create)s %(not_found)s"
            ),
            {"may_create": may_create(who), "not_found": not_found},
        ),
        request=KeyRotateRequestSerializer,
        responses={201: RotatedKeyEnvelopeSerializer, 404: ErrorSerializer, **CREATE_ERRORS},
    )


class SecretUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("API keys are disabled: PHOENIX_SECRET is missing or breaks a rule.")


class BoundedJSONParser(JSONParser):
    """JSON nested past Python's recursion limit is a malformed body, not a server error."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(gettext("JSON parse error - nested too deeply.")) from None


class KeyAPIView(APIView):
    """JSON in and out; keys authenticate first, so a 401 says ``WWW-Authenticate: Bearer``."""

    parser_classes = [BoundedJSONParser]
    permissions_by_method: dict[str, Sequence[type[BasePermission]]] = {}

    def get_authenticators(self) -> list[BaseAuthentication]:
        others = [
            auth() for auth in self.authentication_classes if auth is not APIKeyAuthentication
        ]
        return [APIKeyAuthentication(), *others]

    def get_permissions(self) -> list[BasePermission]:
        method = self.request.method or ""
        # HEAD runs the GET handler (Django's View), so it must pass GET's permissions.
        method = "GET" if method == "HEAD" else method
        classes = self.permissions_by_method.get(method, [IsAuthenticated])
        return [permission() for permission in classes]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, (ValidationError, ParseError)):
            path = "body" if isinstance(exc, ParseError) else ""
            detail = "; ".join(error_lines(exc.detail, path))
            return Response({"detail": detail}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        if isinstance(exc, CacheUnreachable):
            return Response(
                {"detail": str(exc)},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(exc.retry_after)},
            )
        if isinstance(exc, DatabaseError):
            database_failed(exc)
            return Response(
                {"detail": gettext("The database is unavailable; retry shortly.")},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
            )
        if isinstance(exc, SuspiciousOperation) and not isinstance(exc, RequestDataTooBig):
            # e.g. more query parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS: Django's HTML 400.
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if isinstance(exc, RequestDataTooBig):
            # Django would answer with an HTML 400; API clients get JSON.
            return Response(
                {"detail": detail_at("body", gettext("The request body is too large."))},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        return with_headers(super().handle_exception(exc), exc)  # type: ignore[return-value]


def detail_at(path: str, message: str) -> str:
    """A detail about one part of the request, as ``error_lines`` writes one: the path (a field
    name, never translated), then the message."""
    return f"{path}: {message}"


def error_lines(detail: Any, path: str = "") -> Iterator[str]:
    """Flatten DRF error details into ``data.name: message`` lines."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            name = str(field)
            if name == "non_field_errors":
                child = path or "body"
            else:
                child = f"{path}.{name}" if path else name
            yield from error_lines(value, child)
    elif isinstance(detail, list):
        for item in detail:
            yield from error_lines(item, path)
    else:
        yield f"{path}: {detail}" if path else str(detail)


@sensitive_variables()
def create(request: Request, model: type[AbstractAPIKey], **owner: Any) -> Response:
    """201 with the new key, the only response that ever carries a plaintext key."""
    body = KeyCreateRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        with acting_for(request):  # the audit trail records who made it, and from where
            key, plaintext = model.objects.create_key(**owner, **body.validated_data["data"])  # type: ignore[attr-defined]
    except DjangoValidationError as error:
        raise ValidationError({"data": by_field(error)}) from None
    except MissingSecretError:
        raise SecretUnavailable from None
    created = CreatedKeyEnvelopeSerializer({"data": key}, context={"plaintext": plaintext})
    # No cache may keep a copy.
    return Response(
        created.data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"}
    )


@sensitive_variables()
def rotate(request: Request, old: AbstractAPIKey, **creator: Any) -> Response:
    """201 with the key that replaces ``old``: like ``create``, plus the id it replaces."""
    body = KeyRotateRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    replaces = old.key_id  # before a rotation with no grace deletes it
    try:
        with acting_for(request):
            key, plaintext = type(old)._default_manager.rotate(
                old, **body.validated_data.get("data", {}), **creator
            )
    except DjangoValidationError as error:
        errors = error.message_dict
        expired = {"id": errors.pop("id")} if "id" in errors else {}
        raise ValidationError({**expired, **({"data": errors} if errors else {})}) from None
    except MissingSecretError:
        raise SecretUnavailable from None
    except type(old).DoesNotExist:  # revoked by a concurrent request
        raise NotFound(gettext("No such API key.")) from None
    rotated = RotatedKeyEnvelopeSerializer(
        {"data": key}, context={"plaintext": plaintext, "replaces": replaces}
    )
    return Response(
        rotated.data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"}
    )


def by_field(error: DjangoValidationError) -> dict[str, Any]:
    """A model's errors by field; one about the request as a whole (the inventory limit) is
    said of ``data`` itself."""
    errors = dict(error.message_dict)
    if NON_FIELD_ERRORS in errors:
        errors["non_field_errors"] = errors.pop(NON_FIELD_ERRORS)
    return errors


def page(request: Request, keys: QuerySet[Any], kind: Any, serializer: Any) -> Response:
    """One page of ``keys``, newest first: ``limit`` (1 to 1000) and ``cursor`` (the
    ``next_cursor`` of the page before), so no response grows with the inventory."""
    query = PageQuerySerializer(data=request.query_params, context={"kind": kind})
    query.is_valid(raise_exception=True)
    limit: int = query.validated_data["limit"]
    keys = keys.order_by("-pk")
    if "cursor" in query.validated_data:
        keys = keys.filter(pk__lte=query.validated_data["cursor"])
    found = list(keys[: limit + 1])
    next_cursor = found[limit].key_id if len(found) > limit else None
    return Response(serializer({"data": found[:limit], "next_cursor": next_cursor}).data)


def find_key(model: type[KeyT], value: str) -> KeyT:
    """The key an opaque id names, or 404: garbage and ids of the other kind are not found."""
    try:
        key: KeyT = model._default_manager.get_by_key_id(value)
    except model.DoesNotExist:
        raise NotFound(gettext("No such API key.")) from None
    return key


def switch(request: Request, key: AbstractAPIKey, *, disable: bool) -> Response:
    """200 with the key, disabled or enabled (again); 404 when it was revoked meanwhile."""
    manager: Any = type(key)._default_manager
    try:
        with acting_for(request):
            (manager.disable if disable else manager.enable)(key)
    except type(key).DoesNotExist:
        raise NotFound(gettext("No such API key.")) from None
    return Response(KeyEnvelopeSerializer({"data": key}).data)


def revoke(request: Request, key: AbstractAPIKey) -> Response:
    """204 for the one request that revoked the key; a concurrent revocation that lost is 404."""
    with acting_for(request):
        revoked = type(key)._default_manager.revoke(key)
    if not revoked:
        raise NotFound(gettext("No such API key."))
    return Response(status=status.HTTP_204_NO_CONTENT)
