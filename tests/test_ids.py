"""Opaque relay ids: they name a kind, and garbage never decodes to a key."""

from __future__ import annotations

import base64

import pytest

from phoenix_apikeys.ids import global_id, key_id, parse_key_id
from phoenix_apikeys.keys import KeyKind


def encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_key_ids_are_phoenix_relay_ids() -> None:
    assert key_id(KeyKind.SYSTEM, 7) == encode("SystemApiKey:7")
    assert key_id(KeyKind.USER, 7) == encode("UserApiKey:7")


def test_user_ids_are_relay_ids() -> None:
    assert global_id("User", 3) == encode("User:3")


@pytest.mark.parametrize("kind", list(KeyKind))
def test_an_id_round_trips_to_its_kind_and_pk(kind: KeyKind) -> None:
    assert parse_key_id(key_id(kind, 42)) == (kind, 42)


def test_an_id_of_the_other_kind_is_not_found() -> None:
    assert parse_key_id(key_id(KeyKind.SYSTEM, 1), KeyKind.USER) is None
    assert parse_key_id(key_id(KeyKind.USER, 1), KeyKind.SYSTEM) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "not base64 !",
        "é",
        encode("User:1"),
        encode("UserApiKey:"),
        encode("UserApiKey:0"),
        encode("UserApiKey:01"),
        encode("UserApiKey:-1"),
        encode("UserApiKey:1.5"),
        encode("UserApiKey:\uff11"),  # a full-width digit one
        encode("UserApiKey:9223372036854775808"),  # one past the largest BigAutoField
        encode("UserApiKey:1:2"),
        encode("UserApiKey:" + "1" * 100),
        base64.b64encode(b"UserApiKey:\xff").decode(),
    ],
)
def test_garbage_is_no_id(value: str) -> None:
    assert parse_key_id(value) is None


def test_the_largest_primary_key_is_an_id() -> None:
    assert parse_key_id(encode("UserApiKey:9223372036854775807")) == (
        KeyKind.USER,
        9223372036854775807,
    )
