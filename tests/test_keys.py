"""Key format, checksum and digests: pure functions, no database."""

from __future__ import annotations

import re

import pytest
from django.utils.crypto import salted_hmac
from hypothesis import given
from hypothesis import strategies as st

from phoenix_apikeys.keys import (
    BASE62,
    BODY_LENGTH,
    MAX_KEY_LENGTH,
    KeyKind,
    MalformedKey,
    Prefixes,
    check_key,
    checksum,
    digest,
    generate_key,
    key_regex,
    parse_key,
    secret_matches,
)

KINDS = st.sampled_from(list(KeyKind))
PREFIXES = Prefixes(system="phxs_", user="phxu_")


@given(KINDS)
def test_generated_key_parses_back_to_its_kind(kind: KeyKind) -> None:
    key = generate_key(PREFIXES.of(kind))
    assert parse_key(key, PREFIXES).kind is kind


@given(KINDS)
def test_generated_key_matches_the_published_regex(kind: KeyKind) -> None:
    key = generate_key(PREFIXES.of(kind))
    assert re.fullmatch(key_regex("phxs_", "phxu_"), key)
    assert len(key) <= MAX_KEY_LENGTH


def test_kind_is_visible_in_the_prefix() -> None:
    assert generate_key("phxs_").startswith("phxs_")
    assert generate_key("phxu_").startswith("phxu_")


def test_body_carries_at_least_160_bits() -> None:
    key = generate_key("phxu_")
    body = key[len("phxu_") : -6]
    assert set(body) <= set(BASE62)
    assert len(body) * 5.954 >= 160  # log2(62) bits per character


def test_keys_do_not_repeat() -> None:
    assert len({generate_key("phxu_") for _ in range(1000)}) == 1000


BODIES = st.text(alphabet=BASE62, min_size=BODY_LENGTH, max_size=BODY_LENGTH)


@given(KINDS, BODIES, st.data())
def test_every_single_character_change_is_rejected(
    kind: KeyKind, body: str, data: st.DataObject
) -> None:
    head = PREFIXES.of(kind) + body
    key = head + checksum(head)
    assert parse_key(key, PREFIXES).kind is kind
    position = data.draw(st.integers(0, len(key) - 1))
    replacement = data.draw(st.sampled_from(BASE62 + "_-").filter(lambda c: c != key[position]))
    mutated = key[:position] + replacement + key[position + 1 :]
    with pytest.raises(MalformedKey):
        parse_key(mutated, PREFIXES)


def test_every_mutation_of_one_key_is_rejected_exhaustively() -> None:
    key = generate_key("phxs_")
    for position in range(len(key)):
        for replacement in BASE62:
            if replacement == key[position]:
                continue
            with pytest.raises(MalformedKey):
                parse_key(key[:position] + replacement + key[position + 1 :], PREFIXES)


@pytest.mark.parametrize(
    "text",
    ["", "phxu_", "phxu_short", "phxs_" + "a" * 200, "nope_" + "a" * 38, "phxu_" + "!" * 38],
)
def test_malformed_text_is_rejected(text: str) -> None:
    with pytest.raises(MalformedKey):
        parse_key(text, PREFIXES)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nope_" + "a" * 38, "unknown prefix"),
        ("phxu_" + "a" * 37, "wrong length"),
        ("phxs_" + "a" * 39, "wrong length"),
        ("phxu_" + "a" * 37 + "!", "character outside base62"),
        ("phxu_" + "a" * 37 + "\n", "character outside base62"),
        ("phxs_" + "a" * 38, "checksum mismatch"),
    ],
)
def test_a_malformed_key_is_refused_for_the_first_rule_it_breaks(text: str, reason: str) -> None:
    assert check_key(text, PREFIXES) == reason


def test_with_overlapping_prefixes_the_system_prefix_decides_the_kind() -> None:
    """The system check (Error) forbids it; a deployment that runs anyway reads every key that
    starts with the system prefix as a system key, so it never passes as a user key."""
    overlapping = Prefixes(system="phx_", user="phx_u_")
    assert check_key(generate_key("phx_u_"), overlapping) == "wrong length"
    assert check_key(generate_key("phx_"), overlapping).kind is KeyKind.SYSTEM
    empty_system = Prefixes(system="", user="phxu_")  # every text starts with ""
    assert check_key(generate_key(""), empty_system).kind is KeyKind.SYSTEM
    assert check_key(generate_key("phxu_"), empty_system) == "wrong length"


def test_swapping_the_prefix_breaks_the_checksum() -> None:
    key = generate_key("phxs_")
    with pytest.raises(MalformedKey, match="checksum"):
        parse_key("phxu_" + key[len("phxs_") :], PREFIXES)


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    try:
        parse_key(text, PREFIXES)
    except MalformedKey:
        pass


def test_digest_is_fixed_length_and_depends_on_the_secret() -> None:
    key = generate_key("phxu_")
    first = digest(key, "secret-one-0123456789abcdefghijkl")
    second = digest(key, "secret-two-0123456789abcdefghijkl")
    assert len(first) == len(second) == 64
    assert first != second
    assert key not in first


ENCODABLE = st.characters(exclude_categories=("Cs",))


@given(st.text(ENCODABLE, max_size=100), st.text(ENCODABLE, min_size=1, max_size=60))
def test_digest_is_the_salted_hmac_that_stored_keys_were_made_with(text: str, secret: str) -> None:
    """The fast HMAC must never drift from the digests already in databases."""
    expected = salted_hmac("phoenix_apikeys.keys.digest", text, secret, algorithm="sha256")
    assert digest(text, secret) == expected.hexdigest()


def test_custom_prefixes_are_used() -> None:
    acme = Prefixes(system="acme_sk_", user="acme_uk_")
    key = generate_key(acme.of(KeyKind.SYSTEM))
    assert key.startswith("acme_sk_")
    assert parse_key(key, acme).kind is KeyKind.SYSTEM
    with pytest.raises(MalformedKey, match="prefix"):
        parse_key(key, PREFIXES)


@given(st.text(), st.text())
def test_secret_matches_only_equal_text(given_text: str, expected: str) -> None:
    assert secret_matches(given_text, expected) is (given_text == expected)


def test_a_parsed_key_never_shows_its_plaintext() -> None:
    plaintext = generate_key(PREFIXES.user)
    parsed = parse_key(plaintext, PREFIXES)
    assert parsed.plaintext == plaintext
    for shown in (repr(parsed), str(parsed), f"{parsed}", repr([parsed])):
        assert plaintext not in shown
