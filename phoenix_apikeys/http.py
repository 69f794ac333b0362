"""The HTTP side of verification, shared by APIKeyMiddleware and APIKeyAuthentication: the
Authorization header's grammar, the client's address, and throttling of failed attempts."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework.request import Request

from . import audit, scopes, throttle
from .conf import phoenix_settings
from .keys import Credential, Secret
from .outage import VerificationUnavailable
from .restrictions import AddressNotAllowed, IPAddress, RateLimited
from .signals import credential_verified
from .verification import PRINCIPAL_ATTRIBUTE as PRINCIPAL_ATTRIBUTE  # where entry points look
from .verification import (
    CredentialRejected,
    Principal,
    averify_credential,
    reject,
    verify_credential,
)

logger = logging.getLogger("phoenix_apikeys")

# RFC 9110: credentials = auth-scheme [ 1*SP token68 ]; the scheme is a token, and our
# credentials (keys, an admin secret of printable ASCII) are visible ASCII without spaces.
SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CREDENTIALS = re.compile(r"[ \t]+([\x21-\x7e]+)[ \t]*")
_SEPARATOR = re.compile(r"[ \t]+")
MALFORMED_HEADER = _("Invalid Authorization header: expected one credential after the keyword.")


# Whether this process attached a principal to any request yet: until one did, asking a DRF
# request for it (a miss through Request.__getattr__, two exceptions) is skipped.
_attached_any = False


def attach(request: HttpRequest, principal: Principal) -> None:
    """Leave the principal on the request, so no later entry point verifies it again."""
    global _attached_any
    _attached_any = True
    setattr(request, PRINCIPAL_ATTRIBUTE, principal)


def attached(request: HttpRequest | Request) -> Principal | None:
    """The principal an entry point (APIKeyMiddleware, ninja) attached to this request."""
    return getattr(request, PRINCIPAL_ATTRIBUTE, None) if _attached_any else None


def keyword_hint() -> str:
    """The 401 detail for one of our keys sent without our keyword: how to send it instead."""
    return gettext('Send the key as "Authorization: %(keyword)s <key>".') % {
        "keyword": phoenix_settings.AUTH_HEADER_KEYWORD
    }


@sensitive_variables()
def credential_from_header(header: str | None) -> str | None:
    """The credential in ``<keyword> SP <credential>``; None when the header names another
    scheme. Anything else after our keyword (no credential, two, a separator other than space or
    tab, a character outside visible ASCII) is refused, and so is one of our keys without our
    keyword (``phxu_…``, ``Token phxu_…``), with a detail saying how to send it."""
    if not header:
        return None
    keyword = phoenix_settings.AUTH_HEADER_KEYWORD
    ours = _our_header(keyword)
    found = None if ours is None else ours.fullmatch(header)
    if found is not None:  # the well-formed case, in one match
        return Secret(found.group(1))
    scheme = SCHEME.match(header)
    if scheme is None:
        return None
    if scheme.group().lower() != keyword.lower():
        _refuse_key_without_keyword(header, scheme.end())
        return None  # another scheme ("Bearerish" included): other authentication's business
    credentials = _CREDENTIALS.fullmatch(header, scheme.end())
    if credentials is None:
        reject("malformed Authorization header", detail=str(MALFORMED_HEADER))
    return Secret(credentials.group(1))


@functools.lru_cache(maxsize=8)
def _our_header(keyword: str) -> re.Pattern[str] | None:
    """``<keyword> <credential>`` exactly as the steps of ``credential_from_header`` accept it;
    None for a keyword that is no scheme word (the checks report it), which no header names."""
    if SCHEME.fullmatch(keyword) is None:
        return None
    return re.compile(rf"{re.escape(keyword)}{_CREDENTIALS.pattern}", re.IGNORECASE | re.ASCII)


@sensitive_variables()
def _refuse_key_without_keyword(header: str, scheme_end: int) -> None:
    """Refuse a header that is one of our keys, bare or after another scheme's word: other
    authentication would call it "no credentials", and the client would never learn why.

    Nothing of the header reaches the reason or the detail, so no log or response holds it.
    """
    prefixes = phoenix_settings.prefixes
    kind = prefixes.kind_of(header)  # bare: the first word is the key itself
    separator = _SEPARATOR.match(header, scheme_end)
    if kind is None and separator is not None:
        kind = prefixes.kind_of(header[separator.end() :])
    if kind is not None:
        reject(
            "key sent without the Authorization keyword",
            detail=keyword_hint(),
            kind=kind.credential,
        )


def client_ip(meta: Mapping[str, Any], *, strict: bool = False) -> IPAddress | None:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the entry they
    appended to CLIENT_ADDRESS_HEADER (``ip``, ``ip:port`` or ``[ipv6]:port``). An entry that is
    none of these, or fewer entries than proxies, counts as REMOTE_ADDR (never as no address, for
    the throttle), or with ``strict`` as no address (for allowed networks: the proxy's own
    address must not pass for the client's)."""
    remote = _ip(str(meta.get("REMOTE_ADDR", "")))
    header = phoenix_settings.CLIENT_ADDRESS_HEADER
    if not header:
        return remote
    raw = meta.get(header)
    if not raw:
        return remote
    # Positions count from the right, empty entries included: dropping them would let a
    # client-written entry slide into the proxy's place.
    hops = [hop.strip() for hop in str(raw).split(",")]
    trusted = int(phoenix_settings.TRUSTED_PROXY_COUNT)
    if not 0 < trusted <= len(hops):
        return None if strict else remote
    address = _ip(hops[-trusted])
    if address is None and strict:
        return None
    if address is None:
        if header not in _unreadable_reported:
            _unreadable_reported.add(header)
            logger.warning(
                "%s holds a client address that is not an IP address; failed authentications "
                "from such requests are counted against REMOTE_ADDR.",
                header,
            )
        return remote
    return address


def client_address(meta: Mapping[str, Any]) -> str | None:
    """The address failures are counted against and events record: ``client_ip``, with IPv6
    counted per /64, which one client controls whole."""
    if not phoenix_settings.CLIENT_ADDRESS_HEADER:  # REMOTE_ADDR alone: one cached lookup
        return _counted_remote(str(meta.get("REMOTE_ADDR", "")))
    return _counted(client_ip(meta))


@functools.lru_cache(maxsize=4096)
def _counted_remote(text: str) -> str | None:
    return _counted(_ip(text))


_unreadable_reported: set[str] = set()
_WITH_PORT = re.compile(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::\d+)?|(?P<v4>[0-9.]+):\d+")


@functools.lru_cache(maxsize=4096)  # pure, and a server sees the same addresses again and again
def _ip(text: str) -> IPAddress | None:
    with_port = _WITH_PORT.fullmatch(text)
    if with_port is not None:
        text = with_port.group("v6") or with_port.group("v4")
    text = text.partition("%")[0]  # a zone id names an interface, not a client: any text at all
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@functools.lru_cache(maxsize=4096)
def _counted(ip: IPAddress | None) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return None if ip is None else str(ip)


class Client:
    """A request's client address, worked out on first use only: called, the address failures
    are counted against (``client_address``); ``ip()``, the whole address as allowed networks
    judge it (``client_ip``, strict)."""

    __slots__ = ("_counted", "_ip", "meta")

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self.meta = meta
        self._counted: list[str | None] = []
        self._ip: list[IPAddress | None] = []

    def ip(self) -> IPAddress | None:
        if not self._ip:
            self._ip.append(client_ip(self.meta, strict=True))
        return self._ip[0]

    def __call__(self) -> str | None:
        if not self._counted:
            self._counted.append(client_address(self.meta))
        return self._counted[0]


REFUSALS = (
    CredentialRejected,
    scopes.OutOfScope,
    throttle.TooManyFailures,
    VerificationUnavailable,
)


def verify_request(request: HttpRequest | Request) -> Principal | None:
    """The principal of a request that presents our credential, None when it presents none.

    Raises CredentialRejected (401), throttle.TooManyFailures (429),
    outage.VerificationUnavailable (503) or scopes.OutOfScope (403: a good key asking for
    a method its scopes do not allow). Sends ``credential_verified`` with the outcome.
    """
    # Read from Django's request under DRF's, whose proxy costs a failed attribute lookup per
    # read; a method set on DRF's own (``clone_request``) still counts.
    django_request = getattr(request, "_request", request)
    method = vars(request).get("method") or django_request.method
    # No local holds META: a debug page would show it, the header with it.
    source = Client(django_request.META)  # parsed only if the throttle needs it
    started = time.perf_counter()
    try:
        try:
            credential = credential_from_header(source.meta.get("HTTP_AUTHORIZATION"))
            if credential is None:
                return None
            principal = verify_credential(credential, source, method)
        except CredentialRejected as rejected:
            throttle.count_failure(source)  # raises TooManyFailures past the limit
            throttle.log_failure(rejected)
            raise
    except REFUSALS as error:
        _report(started, request, error=error)
        raise
    _report(started, request, principal=principal)
    return principal


_OUTCOMES = (
    (CredentialRejected, "rejected"),
    (AddressNotAllowed, "address_not_allowed"),
    (RateLimited, "rate_limited"),
    (scopes.OutOfScope, "out_of_scope"),
    (throttle.TooManyFailures, "throttled"),
    (VerificationUnavailable, "unavailable"),
)


def _report(
    started: float,
    request: HttpRequest | Request,
    *,
    principal: Principal | None = None,
    error: Exception | None = None,
) -> None:
    """``credential_verified`` for metrics: the kind from the principal, or from the header's
    key prefix when refused (None for anything else); never the credential itself."""
    if not credential_verified.receivers:  # has_listeners() takes the signal's lock
        return
    kind = getattr(principal[1], "credential", None) if principal is not None else None
    if kind is None:
        kind = _kind_of(request.META.get("HTTP_AUTHORIZATION"))
    credential_verified.send(
        sender=None,
        kind=kind,
        outcome=_outcome(error),
        reason=getattr(error, "reason", None),
        duration=time.perf_counter() - started,
    )


def _outcome(error: Exception | None) -> str:
    if error is None:
        return "accepted"
    return next(outcome for refusal, outcome in _OUTCOMES if isinstance(error, refusal))


@sensitive_variables()
def _kind_of(header: str | None) -> Credential | None:
    prefixes = phoenix_settings.prefixes
    for word in (header or "").split()[:2]:
        kind = prefixes.kind_of(word)
        if kind is not None:
            return kind.credential
    return None


async def averify_request(request: HttpRequest) -> Principal | None:
    """``verify_request`` for async callers: a key held in this process's memory is verified
    on the event loop; anything that needs the cache, the database or the throttle's counts runs
    in a thread (``verification.averify_credential``)."""
    source = Client(request.META)
    started = time.perf_counter()
    try:
        try:
            credential = credential_from_header(request.META.get("HTTP_AUTHORIZATION"))
            if credential is None:
                return None
            principal = await averify_credential(credential, source, request.method)
        except CredentialRejected as rejected:
            await sync_to_async(throttle.count_failure)(source)  # raises TooManyFailures
            throttle.log_failure(rejected)
            raise
    except REFUSALS as error:
        _report(started, request, error=error)
        raise
    _report(started, request, principal=principal)
    return principal


def refusal_response(error: Exception) -> JsonResponse:
    """The JSON answer to a refused credential, byte for byte as DRF renders the same refusal
    (compact JSON), so clients see one format whichever entry point refused them."""
    headers: dict[str, str] = {}
    if isinstance(error, CredentialRejected):
        status, detail = 401, error.detail
        headers["WWW-Authenticate"] = f'{phoenix_settings.AUTH_HEADER_KEYWORD} realm="api"'
    elif isinstance(error, scopes.OutOfScope):
        status, detail = 403, error.detail
    elif isinstance(error, (throttle.TooManyFailures, VerificationUnavailable)):
        status = 429 if isinstance(error, throttle.TooManyFailures) else 503
        detail = throttle.retry_detail(error)
        headers["Retry-After"] = str(error.retry_after)
        headers.update(getattr(error, "headers", {}))
    else:
        raise error
    return json_response(detail, status=status, headers=headers)


def json_response(
    detail: str, *, status: int, headers: dict[str, str] | None = None
) -> JsonResponse:
    return JsonResponse(
        {"detail": detail},
        status=status,
        headers=headers,
        json_dumps_params={"separators": (",", ":"), "ensure_ascii": False},
    )


@contextlib.contextmanager
def acting_for(request: HttpRequest | Request) -> Iterator[audit.Acting]:
    """``audit.acting`` for an authenticated request: its user (named "admin secret" when the
    admin secret authenticated it) and its client's address, for the key events it causes."""
    by_admin_secret = getattr(getattr(request, "auth", None), "credential", None) == (
        Credential.ADMIN_SECRET
    )
    with audit.acting(
        actor=getattr(request, "user", None),
        label=audit.ADMIN_SECRET if by_admin_secret else None,
        source=client_address(request.META),
    ) as acting:
        yield acting
