"""The HTTP side of verification, shared by APIKeyMiddleware and APIKeyAuthentication: the
Authorization header's grammar, the client's address, and throttling of failed attempts."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from rest_framework.request import Request

from . import throttle
from .conf import Secret, phoenix_settings
from .verification import CredentialRejected, Principal, reject, verify_credential

# Where APIKeyMiddleware leaves the principal, so DRF does not verify the same request twice.
PRINCIPAL_ATTRIBUTE = "_phoenix_apikeys_principal"
# RFC 9110: credentials = auth-scheme [ 1*SP token68 ]; the scheme is a token, and our
# credentials (keys, an admin secret of printable ASCII) are visible ASCII without spaces.
_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CREDENTIALS = re.compile(r"[ \t]+([\x21-\x7e]+)[ \t]*")
MALFORMED_HEADER = "Invalid Authorization header: expected one credential after the keyword."


@sensitive_variables()
def credential_from_header(header: str | None) -> str | None:
    """The credential in ``<keyword> SP <credential>``; None when the header names another
    scheme. Anything else after our keyword (no credential, two, a separator other than space or
    tab, a character outside visible ASCII) is refused."""
    if not header:
        return None
    keyword = phoenix_settings.AUTH_HEADER_KEYWORD
    scheme = _SCHEME.match(header)
    if scheme is None or scheme.group().lower() != keyword.lower():
        if header[: len(keyword)].lower() == keyword.lower() and not (
            scheme and len(scheme.group()) > len(keyword)
        ):
            reject("malformed Authorization header", detail=MALFORMED_HEADER)
        return None
    credentials = _CREDENTIALS.fullmatch(header, scheme.end())
    if credentials is None:
        reject("malformed Authorization header", detail=MALFORMED_HEADER)
    return Secret(credentials.group(1))


def client_address(meta: Mapping[str, Any]) -> str | None:
    """The address failures are counted against: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT
    proxies the entry they appended to CLIENT_ADDRESS_HEADER. IPv6 counts per /64, which one
    client controls whole."""
    address = meta.get("REMOTE_ADDR")
    header = phoenix_settings.CLIENT_ADDRESS_HEADER
    if header:
        hops = [hop.strip() for hop in str(meta.get(header, "")).split(",") if hop.strip()]
        trusted = int(phoenix_settings.TRUSTED_PROXY_COUNT)
        if 0 < trusted <= len(hops):
            address = hops[-trusted]
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@sensitive_variables()
def verify_request(request: HttpRequest | Request) -> Principal | None:
    """The principal of a request that presents our credential, None when it presents none.

    Raises CredentialRejected (401), throttle.TooManyFailures (429) or
    verification.VerificationUnavailable (503).
    """
    source = client_address(request.META)
    try:
        credential = credential_from_header(request.META.get("HTTP_AUTHORIZATION"))
        if credential is None:
            return None
        return verify_credential(credential, source=source)
    except CredentialRejected:
        throttle.count_failure(source)  # raises TooManyFailures past the limit
        raise
