"""Key format, checksum and digest: pure functions of their arguments, no settings, no models
and no database (the deployment's prefixes come in as a ``Prefixes``).

A key is ``<prefix><body><checksum>``: the prefix names the kind, the body is 32 base62
characters from ``secrets`` (about 190 bits), and the checksum is the CRC32 of prefix and body in
6 base62 characters, so typos and look-alikes are rejected before any query.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from django.utils.crypto import constant_time_compare, get_random_string

if TYPE_CHECKING:
    from _hashlib import HASH

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6
MAX_KEY_LENGTH = 255
HINT_LENGTH = 4
PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,30}_")
_TAIL = re.compile(rf"[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}")
_DIGEST_SALT = "phoenix_apikeys.keys.digest"


class Secret(str):
    """A secret or a plaintext key. Its str is the value, for the few places that use or show
    it; its repr is masked, so a debug page's local variables, a traceback or a logged template
    context never show it (Django hides frame variables only when DEBUG is off)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'********'"


class Credential(str, enum.Enum):
    """How a request authenticated: the API's ``credential`` and the signals' ``kind``."""

    SYSTEM_KEY = "system_key"
    USER_KEY = "user_key"
    ADMIN_SECRET = "admin_secret"


class KeyKind(enum.Enum):
    """The two kinds of stored key; ids, listings and ``--kind`` use these values."""

    SYSTEM = "system"
    USER = "user"

    @property
    def credential(self) -> Credential:
        return Credential.SYSTEM_KEY if self is KeyKind.SYSTEM else Credential.USER_KEY


@dataclass(frozen=True)
class Prefixes:
    """The deployment's key prefixes (``conf.phoenix_settings.prefixes``)."""

    system: str
    user: str

    def of(self, kind: KeyKind) -> str:
        return self.system if kind is KeyKind.SYSTEM else self.user

    def kind_of(self, text: str) -> KeyKind | None:
        """The kind whose prefix ``text`` starts with, or None: says nothing about validity."""
        if text.startswith(self.system):
            return KeyKind.SYSTEM
        if text.startswith(self.user):
            return KeyKind.USER
        return None

    @functools.cached_property
    def well_formed(self) -> re.Pattern[str]:
        """Prefix, length and alphabet of a key in one match; group 1 holds a system prefix.
        As in ``kind_of``, a text that starts with the system prefix is never a user key."""
        system, user = re.escape(self.system), re.escape(self.user)
        return re.compile(rf"(?:({system})|(?!{system}){user}){_TAIL.pattern}")


class MalformedKey(ValueError):
    """The text cannot be a key of this deployment; no query is needed to know it."""


class ParsedKey(NamedTuple):  # a tuple: made on every request, and cheaply
    kind: KeyKind
    plaintext: str

    def __repr__(self) -> str:  # never the plaintext
        return f"ParsedKey(kind={self.kind!r})"

    @property
    def hint(self) -> str:
        return display_hint(self.plaintext)


# Every two-digit base62 number, so a checksum is three lookups (62**6 > 2**32).
_PAIRS = [high + low for high in BASE62 for low in BASE62]


def checksum(text: str) -> str:
    """The CRC32 of ``text`` as CHECKSUM_LENGTH base62 digits, most significant first."""
    number = zlib.crc32(text.encode("ascii"))
    number, low = divmod(number, 62 * 62)
    high, middle = divmod(number, 62 * 62)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def generate_key(prefix: str) -> str:
    """A new plaintext key; callers show it once and store only its digest."""
    head = prefix + get_random_string(BODY_LENGTH, BASE62)
    return Secret(head + checksum(head))


def parse_key(text: str, prefixes: Prefixes) -> ParsedKey:
    """Check prefix, length, alphabet and checksum; raise MalformedKey on any failure."""
    parsed = check_key(text, prefixes)
    if isinstance(parsed, str):
        raise MalformedKey(parsed)
    return parsed


def check_key(text: str, prefixes: Prefixes) -> ParsedKey | str:
    """``parse_key`` with no exception (a refusal is frequent on a public API, and raising costs
    more than the checks): the parsed key, or why ``text`` is none."""
    shape = prefixes.well_formed.fullmatch(text)
    if shape is None:
        return _malformed(text, prefixes)
    if checksum(text[:-CHECKSUM_LENGTH]) != text[-CHECKSUM_LENGTH:]:
        return "checksum mismatch"
    return ParsedKey(KeyKind.USER if shape.group(1) is None else KeyKind.SYSTEM, text)


def _malformed(text: str, prefixes: Prefixes) -> str:
    """Why ``text`` does not have a key's shape, the first check it fails named."""
    kind = prefixes.kind_of(text)
    if kind is None:
        return "unknown prefix"
    if len(text) - len(prefixes.of(kind)) != BODY_LENGTH + CHECKSUM_LENGTH:
        return "wrong length"
    return "character outside base62"


def digest(plaintext: str, secret: str) -> str:
    """HMAC-SHA256 of the key keyed by a server secret, as 64 hex characters.

    The same value as ``salted_hmac(_DIGEST_SALT, plaintext, secret, algorithm="sha256")``
    (a property test holds them equal): HMAC as RFC 2104 defines it, from SHA-256 states that
    have taken the padded key once per secret. A copy of each costs less than a copy of an
    ``hmac.HMAC`` and its Python wrapper.
    """
    inner, outer = _padded(secret)
    inner = inner.copy()
    inner.update(plaintext.encode())
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


@functools.lru_cache(maxsize=8)
def _padded(secret: str) -> tuple[HASH, HASH]:
    """SHA-256 after the inner and the outer pad of the HMAC key ``salted_hmac`` derives."""
    key = hashlib.sha256((_DIGEST_SALT + secret).encode()).digest()
    block = key.ljust(hashlib.sha256().block_size, b"\0")
    return hashlib.sha256(block.translate(_INNER_PAD)), hashlib.sha256(block.translate(_OUTER_PAD))


def digests(plaintext: str, secrets: Iterable[str]) -> list[str]:
    """One digest per secret, current secret first, for rotation through fallbacks."""
    return [digest(plaintext, secret) for secret in secrets]


def secret_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of fixed-length digests, so length and content do not leak."""
    given_digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    expected_digest = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return constant_time_compare(given_digest, expected_digest)


def display_hint(plaintext: str) -> str:
    """The last characters of a key: enough to recognise it, far too few to guess it."""
    return plaintext[-HINT_LENGTH:]


def key_regex(system_prefix: str, user_prefix: str) -> str:
    """The regular expression a secret scanner can use to find this deployment's keys."""
    prefixes = "|".join(re.escape(prefix) for prefix in (system_prefix, user_prefix))
    return rf"\b(?:{prefixes})[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}\b"
