"""Prometheus metrics: scraped from /metrics after real requests, each value moving as it should;
labels are bounded words, never keys or ids."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from phoenix_apikeys import metrics
from phoenix_apikeys.keys import generate_key
from phoenix_apikeys.metrics import reason_label

from .factories import SystemKeyFactory, UserKeyFactory, key_of_inactive_owner

pytestmark = pytest.mark.django_db


def scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """One sample of a scrape (0 when absent)."""
    wanted = ",".join(f'{label}="{labels[label]}"' for label in sorted(labels))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
        if found == wanted:
            return float(match[3])
    return 0.0


def call(credential: str, path: str = "/whoami/", method: str = "get") -> int:
    client = Client()
    return int(getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {credential}").status_code)


def difference(before: str, after: str, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_accepted_and_refused_authentications_are_counted_by_kind_and_reason() -> None:
    user_key = UserKeyFactory()
    before = scrape()
    assert call(user_key.plaintext) == 200
    assert call(generate_key("phxs_")) == 401
    assert call("phxu_broken") == 401
    assert call(key_of_inactive_owner().plaintext) == 401
    after = scrape()
    total = "phoenix_apikeys_authentications_total"
    accepted = {"kind": "user_key", "outcome": "accepted", "reason": "none"}
    assert difference(before, after, total, **accepted) == 1
    unknown = {"kind": "system_key", "outcome": "rejected", "reason": "unknown"}
    assert difference(before, after, total, **unknown) == 1
    malformed = {"kind": "user_key", "outcome": "rejected", "reason": "malformed"}
    assert difference(before, after, total, **malformed) == 1
    inactive = {"kind": "user_key", "outcome": "rejected", "reason": "inactive"}
    assert difference(before, after, total, **inactive) == 1


def test_a_read_key_posting_is_counted_as_scope() -> None:
    key = UserKeyFactory(scopes=["read"])
    before = scrape()
    assert call(key.plaintext, "/plain/", method="post") == 403
    labels = {"kind": "user_key", "outcome": "out_of_scope", "reason": "scope"}
    assert difference(before, scrape(), "phoenix_apikeys_authentications_total", **labels) == 1


def test_throttled_requests_are_counted(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 1, "FAILED_AUTH_WINDOW": 60}
    before = scrape()
    statuses = [call(generate_key("phxu_"), "/plain/") for _ in range(3)]
    assert statuses == [401, 429, 429]
    after = scrape()
    assert difference(before, after, "phoenix_apikeys_throttled_requests_total") == 2


def test_verification_latency_is_observed() -> None:
    key = SystemKeyFactory()
    before = scrape()
    call(key.plaintext)
    after = scrape()
    count = "phoenix_apikeys_verification_seconds_count"
    assert difference(before, after, count, kind="system_key") == 1
    assert (
        difference(before, after, "phoenix_apikeys_verification_seconds_sum", kind="system_key") > 0
    )


def test_cache_hits_and_misses_are_counted(key_cache: str) -> None:
    key = UserKeyFactory()
    before = scrape()
    call(key.plaintext)  # miss: read from the database, then stored
    call(key.plaintext)  # hit
    after = scrape()
    reads = "phoenix_apikeys_key_cache_reads_total"
    assert difference(before, after, reads, result="miss") == 1
    assert difference(before, after, reads, result="hit") == 1


def test_no_cache_counts_no_reads() -> None:
    key = UserKeyFactory()
    before = scrape()
    call(key.plaintext)
    after = scrape()
    assert difference(before, after, "phoenix_apikeys_key_cache_reads_total", result="miss") == 0


def test_live_keys_are_counted_at_scrape_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics.LiveKeys, "COUNTED_FOR", 0.0)
    before = scrape()
    UserKeyFactory.create_batch(2)
    SystemKeyFactory()
    key_of_inactive_owner()
    after = scrape()
    assert difference(before, after, "phoenix_apikeys_live_keys", kind="user_key") == 2
    assert difference(before, after, "phoenix_apikeys_live_keys", kind="system_key") == 1


def test_scraping_again_soon_costs_no_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """/metrics often answers anyone who can reach it: a scrape counts keys at most once every
    COUNTED_FOR seconds a process, so scraping cannot be turned into database work."""
    monkeypatch.setattr(metrics.LiveKeys, "COUNTED_FOR", 0.0)
    scrape()  # counts now
    monkeypatch.setattr(metrics.LiveKeys, "COUNTED_FOR", 60.0)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert "phoenix_apikeys_live_keys" in scrape()
    assert len(queries) == 0


def test_no_label_holds_a_key_or_an_id() -> None:
    key = UserKeyFactory()
    call(key.plaintext)
    call(key.plaintext[:-1] + "x")
    text = scrape()
    assert key.plaintext[:12] not in text
    assert key.key_id not in text


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("credential too long", "malformed"),
        ("malformed user key: bad checksum", "malformed"),
        ("unknown credential", "unknown"),
        ("user key abc expired", "expired"),
        ("user key abc owner inactive", "inactive"),
        ("admin secret presented but the system user is inactive", "inactive"),
        ("PHOENIX_SECRET is missing or breaks a rule", "misconfigured"),
        ("key sent without the Authorization keyword", "malformed"),
        ("malformed Authorization header", "malformed"),
        ("something new", "other"),
    ],
)
def test_refusal_reasons_map_to_a_bounded_label(reason: str, label: str) -> None:
    assert reason_label("rejected", reason) == label


def test_docs_list_every_metric_and_no_other() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"`(phoenix_apikeys_[a-z_]+)`", docs))
    from prometheus_client import REGISTRY

    exported = {
        metric.name + ("_total" if metric.type == "counter" else "")
        for metric in REGISTRY.collect()
        if metric.name.startswith("phoenix_apikeys_")
    }
    assert documented == exported
