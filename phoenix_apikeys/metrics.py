"""Prometheus metrics (the ``[prometheus]`` extra), fed by the app's signals; ``metrics_view``
serves them. Labels are bounded sets of our own words: never a key, an id or request text.

Names and labels are listed in docs/metrics.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .keys import Credential
from .models import KEY_MODELS
from .signals import credential_verified, key_cache_read

AUTHENTICATIONS = Counter(
    "phoenix_apikeys_authentications",
    "Requests that presented an API key or the admin secret, by kind, outcome and reason.",
    ["kind", "outcome", "reason"],
)
VERIFICATION_SECONDS = Histogram(
    "phoenix_apikeys_verification_seconds",
    "Time spent verifying a presented credential (refusals included).",
    ["kind"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
)
CACHE_READS = Counter(
    "phoenix_apikeys_key_cache_reads",
    "Reads of the key cache (process memory or the shared cache): hit or miss.",
    ["result"],
)
THROTTLED = Counter(
    "phoenix_apikeys_throttled_requests",
    "Requests refused with 429 because their address failed to authenticate too often.",
)

# A refusal's own words (verification.reject), first match wins; anything else is "other".
_REASONS = (
    ("malformed", "malformed"),
    ("too long", "malformed"),
    ("without the Authorization keyword", "malformed"),
    ("unknown", "unknown"),
    ("expired", "expired"),
    ("inactive", "inactive"),
    ("disabled", "disabled"),
    ("no uses left", "no_uses_left"),
    ("PHOENIX_SECRET", "misconfigured"),
)
_OUTCOME_REASONS = {
    "accepted": "none",
    "out_of_scope": "scope",
    "address_not_allowed": "network",
    "rate_limited": "rate_limit",
    "throttled": "throttled",
    "unavailable": "database",
}


def reason_label(outcome: str, reason: str | None) -> str:
    """A bounded label for why a request was refused ("none" when it was not)."""
    if outcome != "rejected":
        return _OUTCOME_REASONS.get(outcome, "other")
    for words, label in _REASONS:
        if words in (reason or ""):
            return label
    return "other"


def kind_label(kind: Any) -> str:
    return kind.value if isinstance(kind, Credential) else "none"


def _on_verified(
    *, kind: Any, outcome: str, reason: str | None, duration: float, **kwargs: Any
) -> None:
    label = kind_label(kind)
    AUTHENTICATIONS.labels(label, outcome, reason_label(outcome, reason)).inc()
    VERIFICATION_SECONDS.labels(label).observe(duration)
    if outcome == "throttled":
        THROTTLED.inc()


def _on_cache_read(*, hit: bool, **kwargs: Any) -> None:
    CACHE_READS.labels("hit" if hit else "miss").inc()


class LiveKeys(Collector):
    """Usable keys by kind, counted in the database at scrape time, at most once every
    ``COUNTED_FOR`` seconds a process (so scraping cannot be turned into database work); nothing
    when the database cannot be asked: a scrape never fails because of it."""

    COUNTED_FOR = 15.0

    def __init__(self) -> None:
        self.counted: tuple[float, list[tuple[str, int]]] | None = None

    def describe(self) -> Iterator[Metric]:
        yield self._family()  # registering asks for names only: no query at start-up

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        if self.counted is None or now - self.counted[0] >= self.COUNTED_FOR:
            try:
                counts = [
                    (kind.credential.value, model._default_manager.usable().count())
                    for kind, model in KEY_MODELS.items()
                ]
            except DatabaseError:
                return
            self.counted = (now, counts)
        family = self._family()
        for kind_name, count in self.counted[1]:
            family.add_metric([kind_name], count)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        help_text = "Keys that would authenticate now, by kind."
        return GaugeMetricFamily("phoenix_apikeys_live_keys", help_text, labels=["kind"])


def register(registry: CollectorRegistry = REGISTRY) -> None:
    """Connect the receivers and the live-key collector (apps.ready does, once)."""
    credential_verified.connect(_on_verified, dispatch_uid="phoenix_apikeys.metrics")
    key_cache_read.connect(_on_cache_read, dispatch_uid="phoenix_apikeys.metrics")
    if not getattr(registry, "_phoenix_apikeys_live_keys", False):
        registry.register(LiveKeys())
        registry._phoenix_apikeys_live_keys = True  # type: ignore[attr-defined]


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Every metric of the default registry, in Prometheus's text format."""
    return HttpResponse(generate_latest(REGISTRY), content_type="text/plain; version=0.0.4")
