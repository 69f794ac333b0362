"""The leak-report route: revoke the keys a report names, with no credential."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from .. import throttle
from ..cache import CacheUnreachable, ready_for_changes
from ..http import Client
from ..models import MissingSecretError, revoke_leaked
from .base import KeyAPIView, SecretUnavailable, detail_at, document
from .serializers import ErrorSerializer, LeakReceiptEnvelopeSerializer, LeakReportRequestSerializer

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

    def get_authenticators(self) -> list[BaseAuthentication]:
        return []

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()]

    @document(
        "revokeLeakedApiKeys",
        _("Report leaked keys, revoking them"),
        description=_(
            "No credential: anyone holding a key may report it (an Authorization "
            "header is ignored). Every live key of this deployment listed is revoked at once and "
            "its owner (user keys) or ADMINS (system keys) emailed; anything else listed is "
            "ignored without a word. The answer is the same 202 whatever was found (503 for "
            "every report while the key cache cannot be reached). At most 100 keys of at "
            "most 255 characters, in a JSON body of at most 64 KB; LEAK_REVOCATION_LIMIT reports "
            "per client address per FAILED_AUTH_WINDOW (429 past it)."
        ),
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
        source = Client(request.META)
        try:
            throttle.refuse_if_blocked(source)  # an address guessing keys is refused here too
            throttle.count_leak_report(source)  # every report counts, whatever it names
        except throttle.TooManyFailures as error:
            return Response(
                {"detail": throttle.retry_detail(error)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(error.retry_after)},
            )
        if declared_length(request) > MAX_LEAK_REPORT_BYTES:
            return Response(
                {
                    "detail": detail_at(
                        "body",
                        gettext("A leak report is at most %(bytes)d bytes.")
                        % {"bytes": MAX_LEAK_REPORT_BYTES},
                    )
                },
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
