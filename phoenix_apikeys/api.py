"""The Phoenix-compatible key-management REST API (see the README); routes in ``urls``.

Bodies are ``{"data": ...}``; a body or query that fails validation is 422 with a ``detail``
naming the field, set here so the host's exception handler stays untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.views.decorators.debug import sensitive_variables
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, NotFound, ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import throttle
from .authentication import APIKeyAuthentication
from .cache import CacheUnreachable, ready_for_changes
from .http import acting_for, lazy_address
from .models import AbstractAPIKey, MissingSecretError, SystemKey, UserKey, revoke_leaked
from .permissions import (
    VIEW_ALL_USER_KEYS,
    CanCreateSystemKeys,
    CanDeleteSystemKeys,
    CanViewAllUserKeys,
    CanViewSystemKeys,
    IsHumanLogin,
    IsNotScopedKey,
    IsNotSystemKey,
    has_admin_permission,
)
from .serializers import (
    CreatedKeyEnvelopeSerializer,
    CurrentUserEnvelopeSerializer,
    ErrorSerializer,
    InventoryEnvelopeSerializer,
    KeyCreateRequestSerializer,
    KeyListEnvelopeSerializer,
    KeyRotateRequestSerializer,
    LeakReceiptEnvelopeSerializer,
    LeakReportRequestSerializer,
    PageQuerySerializer,
    RotatedKeyEnvelopeSerializer,
)
from .verification import RETRY_AFTER_UNAVAILABLE, AdminSecret, database_failed

logger = logging.getLogger("phoenix_apikeys")

ViewMethod = Callable[..., Any]
Decorator = Callable[[ViewMethod], ViewMethod]
KeyT = TypeVar("KeyT", bound=AbstractAPIKey)

# Every route may answer these; each route adds its own.
UNAUTHENTICATED = {401: ErrorSerializer}
FORBIDDEN = {401: ErrorSerializer, 403: ErrorSerializer}
CREATE_ERRORS = {**FORBIDDEN, 413: ErrorSerializer, 415: ErrorSerializer, 422: ErrorSerializer}


def document(operation_id: str, summary: str, *, id_path: bool = False, **kwargs: Any) -> Decorator:
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
                "id", str, OpenApiParameter.PATH, description="The key's opaque id, as listed."
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


def may_create(who: str) -> str:
    return f"{who}; API keys cannot create keys. The plaintext key is in this response only."


def rotation(operation_id: str, summary: str, who: str, not_found: str) -> Decorator:
    """What both rotation routes declare: the creation response plus ``replaces``, and 404."""
    return document(
        operation_id,
        summary,
        id_path=True,
        description="The new key copies the old one's name, description and scopes; the old "
        "key keeps working for the grace period (0: revoked now). An expired key cannot be "
        f"rotated (422). {may_create(who)} {not_found}",
        request=KeyRotateRequestSerializer,
        responses={201: RotatedKeyEnvelopeSerializer, 404: ErrorSerializer, **CREATE_ERRORS},
    )


class SecretUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "API keys are disabled: PHOENIX_SECRET is missing or breaks a rule."


class BoundedJSONParser(JSONParser):
    """JSON nested past Python's recursion limit is a malformed body, not a server error."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


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
            detail = "; ".join(describe(exc.detail, path))
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
                {"detail": "The database is unavailable; retry shortly."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
            )
        if isinstance(exc, SuspiciousOperation) and not isinstance(exc, RequestDataTooBig):
            # e.g. more query parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS: Django's HTML 400.
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if isinstance(exc, RequestDataTooBig):
            # Django would answer with an HTML 400; API clients get JSON.
            return Response(
                {"detail": "body: The request body is too large."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        return super().handle_exception(exc)


def describe(detail: Any, path: str = "") -> Iterator[str]:
    """Flatten DRF error details into ``data.name: message`` lines."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            name = str(field)
            if name == "non_field_errors":
                child = path or "body"
            else:
                child = f"{path}.{name}" if path else name
            yield from describe(value, child)
    elif isinstance(detail, list):
        for item in detail:
            yield from describe(item, path)
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
        raise NotFound("No such API key.") from None
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
        raise NotFound("No such API key.") from None
    return key


def revoke(request: Request, key: AbstractAPIKey) -> Response:
    """204 for the one request that revoked the key; a concurrent revocation that lost is 404."""
    with acting_for(request):
        revoked = type(key)._default_manager.revoke(key)
    if not revoked:
        raise NotFound("No such API key.")
    return Response(status=status.HTTP_204_NO_CONTENT)


class CurrentUserView(KeyAPIView):
    """The authenticated caller: any person or credential."""

    @document(
        "getViewer",
        "Who am I",
        responses={200: CurrentUserEnvelopeSerializer, **UNAUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        body = CurrentUserEnvelopeSerializer({"data": request.user}, context={"request": request})
        return Response(body.data)


class UserKeysView(KeyAPIView):
    """The caller's own user keys."""

    permissions_by_method = {"POST": [IsHumanLogin]}

    @document(
        "listUserApiKeys",
        "List your own user keys",
        description="Newest first, with cursor pagination: pass next_cursor back as cursor. "
        "A system key or the admin secret owns no user keys: the list is empty.",
        parameters=[PageQuerySerializer],
        responses={200: KeyListEnvelopeSerializer, 422: ErrorSerializer, **UNAUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        keys = UserKey.objects.filter(user=request.user.pk)
        if isinstance(request.auth, (SystemKey, AdminSecret)):
            keys = keys.none()
        return page(request, keys, UserKey.kind, KeyListEnvelopeSerializer)

    @document(
        "createUserApiKey",
        "Create a user key for yourself",
        description=may_create("Only a person logged in may do this"),
        **CREATION,
    )
    def post(self, request: Request) -> Response:
        return create(request, UserKey, user=request.user)


class UserKeyView(KeyAPIView):
    """One user key, by its opaque id."""

    permissions_by_method = {"DELETE": [IsNotSystemKey, IsNotScopedKey]}

    @document(
        "deleteUserApiKey",
        "Delete a user key",
        description="Your own, or anyone's for an administrator or the admin secret; "
        "a key that is not yours, or an id of another kind, is 404. System keys: 403.",
        **DELETION,
    )
    def delete(self, request: Request, id: str) -> Response:
        key = find_key(UserKey, id)
        if key.user_id != request.user.pk and not has_admin_permission(request, VIEW_ALL_USER_KEYS):
            raise NotFound("No such API key.")
        return revoke(request, key)


class UserKeyRotationView(KeyAPIView):
    """Replace one of the caller's own user keys."""

    permissions_by_method = {"POST": [IsHumanLogin]}

    @rotation(
        "rotateUserApiKey",
        "Rotate one of your user keys",
        "Only its owner, logged in as a person, may do this",
        "Another user's key, or an id of another kind, is 404.",
    )
    def post(self, request: Request, id: str) -> Response:
        key = find_key(UserKey, id)
        if key.user_id != request.user.pk:  # nobody mints a key that acts as someone else
            raise NotFound("No such API key.")
        return rotate(request, key)


class UserKeyInventoryView(KeyAPIView):
    """Every user's keys, for administrators and the admin secret."""

    permissions_by_method = {"GET": [CanViewAllUserKeys]}

    @document(
        "listAllUserApiKeys",
        "List every user's keys",
        description="Newest first, with cursor pagination: pass next_cursor back as cursor.",
        parameters=[PageQuerySerializer],
        responses={200: InventoryEnvelopeSerializer, 422: ErrorSerializer, **FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        keys = UserKey.objects.select_related("user")
        return page(request, keys, UserKey.kind, InventoryEnvelopeSerializer)


class SystemKeysView(KeyAPIView):
    """System keys, for administrators and the admin secret."""

    permissions_by_method = {"GET": [CanViewSystemKeys], "POST": [CanCreateSystemKeys]}

    @document(
        "listSystemApiKeys",
        "List system keys",
        description="Newest first, with cursor pagination: pass next_cursor back as cursor.",
        parameters=[PageQuerySerializer],
        responses={200: KeyListEnvelopeSerializer, 422: ErrorSerializer, **FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        return page(request, SystemKey.objects.all(), SystemKey.kind, KeyListEnvelopeSerializer)

    @document(
        "createSystemApiKey",
        "Create a system key",
        description=may_create("An administrator logged in as a person, or the admin secret"),
        **CREATION,
    )
    def post(self, request: Request) -> Response:
        # created_by is audit only; the admin secret is recorded as the system user it acts as.
        return create(request, SystemKey, created_by=request.user)


class SystemKeyView(KeyAPIView):
    """One system key, by its opaque id."""

    permissions_by_method = {"DELETE": [IsNotScopedKey, CanDeleteSystemKeys]}

    @document(
        "deleteSystemApiKey",
        "Delete a system key",
        description="A user key's id, or garbage, is 404.",
        **DELETION,
    )
    def delete(self, request: Request, id: str) -> Response:
        return revoke(request, find_key(SystemKey, id))


class SystemKeyRotationView(KeyAPIView):
    """Replace one system key."""

    permissions_by_method = {"POST": [CanCreateSystemKeys]}

    @rotation(
        "rotateSystemApiKey",
        "Rotate a system key",
        "An administrator logged in as a person, or the admin secret",
        "A user key's id, or garbage, is 404.",
    )
    def post(self, request: Request, id: str) -> Response:
        # The caller is recorded as the new key's creator, as on creation.
        return rotate(request, find_key(SystemKey, id), created_by=request.user)


# Leak reports: the largest body read (Content-Length), below Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
MAX_LEAK_REPORT_BYTES = 64 * 1024


class LeakRevocationView(KeyAPIView):
    """Revoke keys reported as leaked (as GitHub's credential revocation API). Knowing a key
    proves it leaked, so no credential is asked for: an Authorization header is ignored, here
    and by APIKeyMiddleware (``takes_no_credential``).

    Every report gets the same 202 whatever it named (no oracle): each item is parsed and
    digested, each well-formed one looked up by one indexed query, and nothing returns early.
    """

    takes_no_credential = True
    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [AllowAny]

    def get_authenticators(self) -> list[BaseAuthentication]:
        return []

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()]

    @document(
        "revokeLeakedApiKeys",
        "Report leaked keys, revoking them",
        description="No credential: anyone holding a key may report it (an Authorization "
        "header is ignored). Every live key of this deployment listed is revoked at once and "
        "its owner (user keys) or ADMINS (system keys) emailed; anything else listed is ignored "
        "without a word. The answer is the same 202 whatever was found (503 for every report "
        "while the key cache cannot be reached). At most 100 keys of at "
        "most 255 characters, in a JSON body of at most 64 KB; LEAK_REVOCATION_LIMIT reports "
        "per client address per FAILED_AUTH_WINDOW (429 past it).",
        auth=[{}],  # OpenAPI's "no credential"
        request=LeakReportRequestSerializer,
        responses={
            202: LeakReceiptEnvelopeSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
            422: ErrorSerializer,
        },
    )
    @sensitive_variables()
    def post(self, request: Request) -> Response:
        source = lazy_address(request.META)
        try:
            throttle.refuse_if_blocked(source)  # an address guessing keys is refused here too
            throttle.count_leak_report(source)  # every report counts, whatever it names
        except throttle.TooManyFailures as error:
            return Response(
                {"detail": f"{error} Retry in {error.retry_after} seconds."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(error.retry_after)},
            )
        if declared_length(request) > MAX_LEAK_REPORT_BYTES:
            return Response(
                {"detail": f"body: A leak report is at most {MAX_LEAK_REPORT_BYTES} bytes."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        # The transaction first: with the database unreachable every report is 503 alike; and
        # with the key cache unreachable too, before anything reported is looked at.
        if not ready_for_changes():
            raise CacheUnreachable
        with transaction.atomic():
            body = LeakReportRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            texts: list[str] = body.validated_data["data"]["keys"]
            try:
                revoke_leaked(texts, source())
            except MissingSecretError:
                raise SecretUnavailable from None
        return Response(
            LeakReceiptEnvelopeSerializer({"data": {"received": len(texts)}}).data,
            status=status.HTTP_202_ACCEPTED,
        )


def declared_length(request: Request) -> int:
    """The body's Content-Length: all Django reads of a body (none, when it is not a number)."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0
