"""Opaque ids for the REST API and the commands: Phoenix-style relay global ids.

An id is base64 of ``<type name>:<primary key>``, so it carries the kind of key it names and a
system key's id can never select a user key (or the reverse).
"""

from __future__ import annotations

import base64
import binascii
import re

from .keys import KeyKind

USER_TYPE = "User"
KEY_TYPES = {KeyKind.SYSTEM: "SystemApiKey", KeyKind.USER: "UserApiKey"}
# Longer than any id we issue; refused before decoding.
MAX_ID_LENGTH = 64
# Primary keys are BigAutoFields: canonical positive integers that fit in 63 bits.
MAX_PK = 2**63 - 1
_CANONICAL_PK = re.compile(r"[1-9][0-9]{0,18}")


def global_id(type_name: str, pk: object) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


def key_id(kind: KeyKind, pk: int) -> str:
    return global_id(KEY_TYPES[kind], pk)


def parse_key_id(value: str, kind: KeyKind | None = None) -> tuple[KeyKind, int] | None:
    """The kind and primary key an id names, or None for garbage or a key of another kind."""
    decoded = _decode(value)
    if decoded is None:
        return None
    type_name, _, pk = decoded.partition(":")
    kinds = [kind] if kind is not None else list(KeyKind)
    for candidate in kinds:
        if type_name == KEY_TYPES[candidate] and _CANONICAL_PK.fullmatch(pk) and int(pk) <= MAX_PK:
            return candidate, int(pk)
    return None


def _decode(value: str) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        return None
    try:
        return base64.b64decode(value.encode("ascii"), validate=True).decode("ascii")
    except (UnicodeError, binascii.Error):
        return None
