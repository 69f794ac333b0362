"""POST /v1/api_keys/revoke: keys reported as leaked are revoked, with no credential, over real
HTTP (live_server + requests). The answer never says what was found."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests
from django.core import mail

from phoenix_apikeys import notifications
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.models import AbstractAPIKey, SystemKey, UserKey, state

from .factories import SystemKeyFactory, UserFactory, UserKeyFactory
from .testapp.caches import FlakyCache

ROUTE = "/v1/api_keys/revoke"


def report(live_server: Any, keys: Any, headers: dict[str, str] | None = None) -> Any:
    return requests.post(
        live_server.url + ROUTE, json={"data": {"keys": keys}}, headers=headers, timeout=30
    )


def raw(live_server: Any, body: bytes | str, content_type: str | None) -> Any:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return requests.post(live_server.url + ROUTE, data=body, headers=headers, timeout=30)


def who_am_i(live_server: Any, plaintext: str) -> int:
    response = requests.get(
        live_server.url + "/v1/user", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
    )
    return int(response.status_code)


def stored(key: AbstractAPIKey) -> bool:
    return bool(type(key)._default_manager.filter(pk=key.pk).exists())


def answer(response: Any) -> tuple[int, bytes, str]:
    """What a reporter sees, minus the Date header."""
    return response.status_code, response.content, response.headers["Content-Type"]


def received(count: int) -> tuple[int, bytes, str]:
    body = {"data": {"received": count}}
    return 202, json.dumps(body, separators=(",", ":")).encode(), "application/json"


def revoked_key_text() -> str:
    key = UserKeyFactory()
    key.delete()
    return str(key.plaintext)


# Revoking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("warm_cache", [False, True], ids=["no key cache", "warm key cache"])
def test_leaked_user_and_system_keys_stop_working_at_once(
    live_server: Any, settings: Any, warm_cache: bool
) -> None:
    if warm_cache:
        settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys"}
    user_key, system_key, bystander = UserKeyFactory(), SystemKeyFactory(), UserKeyFactory()
    for key in (user_key, system_key, bystander):
        assert who_am_i(live_server, key.plaintext) == 200  # cached now, with the cache on
    response = report(live_server, [user_key.plaintext, system_key.plaintext])
    assert answer(response) == received(2)
    assert who_am_i(live_server, user_key.plaintext) == 401
    assert who_am_i(live_server, system_key.plaintext) == 401
    assert not stored(user_key) and not stored(system_key)
    assert who_am_i(live_server, bystander.plaintext) == 200  # only what was listed


def test_no_credential_is_needed_and_any_authorization_header_is_ignored(
    live_server: Any, settings: Any
) -> None:
    # One failed authentication would block the address: none of these may count as one.
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 1}
    headers = [
        None,
        {"Authorization": f"Bearer {generate_key('phxu_')}"},  # a key never issued
        {"Authorization": "Bearer"},  # malformed
        {"Authorization": f"{generate_key('phxs_')}"},  # one of ours without the keyword
        {"Authorization": "Basic bm9ib2R5Om5vdGhpbmc="},  # another scheme, a bad password
    ]
    for header in headers:
        key = UserKeyFactory()
        assert answer(report(live_server, [key.plaintext], header)) == received(1), header
        assert not stored(key), header
    survivor = UserKeyFactory()
    assert who_am_i(live_server, survivor.plaintext) == 200  # the address was never blocked


def test_a_key_listed_twice_is_revoked_once(live_server: Any) -> None:
    key = UserKeyFactory(user=UserFactory(email="twice@example.com"))
    assert answer(report(live_server, [key.plaintext, key.plaintext])) == received(2)
    assert not stored(key)
    assert len(mail.outbox) == 1


# No oracle -----------------------------------------------------------------------------------


def test_the_answer_is_byte_identical_whatever_was_listed(live_server: Any) -> None:
    single = {
        "known user key": lambda: UserKeyFactory().plaintext,
        "known system key": lambda: SystemKeyFactory().plaintext,
        "unknown": lambda: generate_key("phxu_"),
        "malformed": lambda: "phxu_not-a-key",
        "not ours at all": lambda: "ghp_" + "a" * 36,
        "empty": lambda: "",
        "already revoked": revoked_key_text,
    }
    answers = {name: answer(report(live_server, [make()])) for name, make in single.items()}
    assert set(answers.values()) == {received(1)}, answers
    known = UserKeyFactory()
    mixes = [
        [known.plaintext, generate_key("phxs_"), "garbage"],
        ["garbage", "garbage", "garbage"],
        [generate_key("phxu_"), revoked_key_text(), SystemKeyFactory().plaintext],
    ]
    assert {answer(report(live_server, mix)) for mix in mixes} == {received(3)}
    assert not stored(known)  # the mix did revoke what it held


def test_every_item_is_digested_and_every_well_formed_one_looked_up(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    digested: list[str] = []
    looked_up: list[list[str]] = []
    real_digests = state.digests
    real_find = UserKey.objects.find_by_digests.__func__  # type: ignore[attr-defined]

    def counting_digests(text: str, secrets: Any) -> list[str]:
        digested.append(text)
        return real_digests(text, secrets)

    def counting_find(self: Any, candidates: list[str]) -> Any:
        looked_up.append(candidates)
        return real_find(self, candidates)

    monkeypatch.setattr(state, "digests", counting_digests)
    monkeypatch.setattr(type(UserKey.objects), "find_by_digests", counting_find)
    monkeypatch.setattr(type(SystemKey.objects), "find_by_digests", counting_find)
    items = ["garbage", generate_key("phxu_"), "", UserKeyFactory().plaintext, "phxs_x"]
    assert answer(report(live_server, items)) == received(5)
    assert len(digested) == 5
    assert len(looked_up) == 2  # the two well-formed keys, one query each


# Limits --------------------------------------------------------------------------------------


def test_limits_are_at_most_100_keys_of_at_most_255_characters(live_server: Any) -> None:
    key = UserKeyFactory()
    too_many = report(live_server, [key.plaintext] + ["x"] * 100)
    assert too_many.status_code == 422
    assert too_many.json()["detail"].startswith("data.keys:")
    too_long = report(live_server, [key.plaintext, "x" * 256])
    assert too_long.status_code == 422
    assert too_long.json()["detail"].startswith("data.keys.1:")
    assert stored(key)  # a refused report revokes nothing
    assert answer(report(live_server, ["x" * 255] * 99 + [key.plaintext])) == received(100)
    assert not stored(key)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": {"keys": ["phxu_", 123]}}, "data.keys.1"),
        ({"data": {"keys": [None]}}, "data.keys.0"),
        ({"data": {"keys": [["phxu_"]]}}, "data.keys.0"),
        ({"data": {"keys": "phxu_"}}, "data.keys"),
        ({"data": {}}, "data.keys"),
        ({"data": []}, "data"),
        ({}, "data"),
        ([], "body"),
    ],
    ids=repr,
)
def test_a_body_that_is_no_list_of_strings_is_422(live_server: Any, body: Any, field: str) -> None:
    response = requests.post(live_server.url + ROUTE, json=body, timeout=30)
    assert response.status_code == 422
    assert response.json()["detail"].split(": ")[0] == field


def test_a_body_over_64_kb_is_413_and_revokes_nothing(live_server: Any) -> None:
    key = UserKeyFactory()
    padded = {"data": {"keys": [key.plaintext]}, "padding": ""}
    padded["padding"] = "x" * (64 * 1024 - len(json.dumps(padded)) + 1)
    body = json.dumps(padded)
    assert len(body.encode()) == 64 * 1024 + 1
    response = raw(live_server, body, "application/json")
    assert response.status_code == 413
    assert response.json()["detail"]
    assert stored(key)
    padded["padding"] = padded["padding"][1:]  # exactly 64 KB: read
    assert answer(raw(live_server, json.dumps(padded), "application/json")) == received(1)
    assert not stored(key)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data", None]
)
def test_a_body_that_is_not_json_is_415(live_server: Any, content_type: str | None) -> None:
    key = UserKeyFactory()
    body = json.dumps({"data": {"keys": [key.plaintext]}})
    response = raw(live_server, body, content_type)
    assert response.status_code == 415
    assert stored(key)


# Rate limit ----------------------------------------------------------------------------------


def test_past_the_limit_an_address_gets_429_and_every_report_counts(
    live_server: Any, settings: Any
) -> None:
    settings.PHOENIX_APIKEYS = {
        "LEAK_REVOCATION_LIMIT": 3,
        "FAILED_AUTH_WINDOW": 77,
        "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR",
    }
    first = {"X-Forwarded-For": "203.0.113.7"}
    assert report(live_server, [generate_key("phxu_")], first).status_code == 202
    assert report(live_server, [123], first).status_code == 422  # refused reports count too
    assert report(live_server, ["garbage"], first).status_code == 202
    key = UserKeyFactory()
    refused = report(live_server, [key.plaintext], first)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "77"
    assert refused.json()["detail"].startswith("Too many leak reports from your address.")
    assert stored(key)  # nothing was looked at
    other = {"X-Forwarded-For": "198.51.100.9"}
    assert answer(report(live_server, [key.plaintext], other)) == received(1)
    assert not stored(key)


# Telling the owner ---------------------------------------------------------------------------


def all_mail_text() -> str:
    return "\n".join(f"{m.subject}\n{m.body}\n{m.to}" for m in mail.outbox)


def test_the_owner_of_a_user_key_and_admins_for_a_system_key_are_emailed(
    live_server: Any, settings: Any
) -> None:
    settings.ADMINS = [("Ops", "ops@example.com")]
    user_key = UserKeyFactory(user=UserFactory(email="owner@example.com"), name="deploy bot")
    system_key = SystemKeyFactory(name="billing sync")
    facts = {key.pk: (key.key_id, key.prefixed_hint, key.name) for key in (user_key, system_key)}
    response = report(live_server, [user_key.plaintext, system_key.plaintext, "garbage"])
    assert answer(response) == received(3)
    by_recipient = {tuple(message.to): message for message in mail.outbox}
    assert set(by_recipient) == {("owner@example.com",), ("ops@example.com",)}
    for address, key in (("owner@example.com", user_key), ("ops@example.com", system_key)):
        message = by_recipient[(address,)]
        key_id, hint, name = facts[key.pk]
        assert "leaked" in message.subject
        assert key_id in message.body and hint in message.body and name in message.body
        assert "reported as leaked" in message.body
    text = all_mail_text()
    assert user_key.plaintext not in text and system_key.plaintext not in text


def test_nothing_found_emails_nobody(live_server: Any, settings: Any) -> None:
    settings.ADMINS = [("Ops", "ops@example.com")]
    items = [generate_key("phxu_"), generate_key("phxs_"), revoked_key_text(), "garbage"]
    assert answer(report(live_server, items)) == received(4)
    assert mail.outbox == []


def test_a_user_key_whose_owner_has_no_address_tells_admins(
    live_server: Any, settings: Any
) -> None:
    settings.ADMINS = [("Ops", "ops@example.com")]
    key = UserKeyFactory(user=UserFactory(email=""))
    assert answer(report(live_server, [key.plaintext])) == received(1)
    assert [message.to for message in mail.outbox] == [["ops@example.com"]]


def test_a_mail_failure_is_logged_never_a_500(
    live_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(notifications, "send_mail", broken)
    caplog.set_level(logging.DEBUG, logger="phoenix_apikeys")
    key = UserKeyFactory(user=UserFactory(email="owner@example.com"))
    assert answer(report(live_server, [key.plaintext])) == received(1)
    assert not stored(key)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and "email" in r.message]
    assert len(failures) == 1
    assert key.plaintext not in caplog.text


def test_no_plaintext_reaches_the_logs(
    live_server: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ADMINS = [("Ops", "ops@example.com")]
    caplog.set_level(logging.DEBUG)
    user_key, system_key = UserKeyFactory(), SystemKeyFactory()
    unknown, malformed = generate_key("phxu_"), "phxu_" + "Z" * 38
    items = [user_key.plaintext, system_key.plaintext, unknown, malformed]
    assert answer(report(live_server, items)) == received(4)
    revoked = [r for r in caplog.records if "reported as leaked" in r.getMessage()]
    assert len(revoked) == 2  # the revocations were logged, by id
    assert user_key.key_id in caplog.text and system_key.key_id in caplog.text
    for text in items:
        assert text not in caplog.text
        assert all(text not in repr(record.args) for record in caplog.records)


# The key cache unreachable -------------------------------------------------------------------


def test_an_unreachable_key_cache_is_503_for_every_report_and_revokes_nothing(
    live_server: Any, flaky: type[FlakyCache]
) -> None:
    """A 202 that revoked nothing would never be retried; a 503 for every report, whatever it
    lists, tells the reporter to retry and tells a guesser nothing."""
    key, other = UserKeyFactory(user=UserFactory(email="owner@example.com")), UserKeyFactory()
    assert who_am_i(live_server, key.plaintext) == 200
    flaky.broken = True
    for listed in ([key.plaintext, other.plaintext], ["garbage"], [generate_key("phxu_")]):
        response = report(live_server, listed)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
    assert stored(key) and stored(other)
    assert mail.outbox == []
    flaky.broken = False
    assert answer(report(live_server, [key.plaintext])) == received(1)  # the retry
    assert who_am_i(live_server, key.plaintext) == 401
    assert len(mail.outbox) == 1


def test_without_a_usable_secret_a_report_is_503_and_revokes_nothing(
    live_server: Any, settings: Any
) -> None:
    key = UserKeyFactory()
    settings.PHOENIX_SECRET = None
    response = report(live_server, [key.plaintext, "garbage"])
    assert response.status_code == 503
    assert "PHOENIX_SECRET" in response.json()["detail"]
    assert stored(key)
