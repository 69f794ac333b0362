"""Restrictions under load: disable, remaining uses and rate limits across workers and hosts.

revocation.py's set-up (two gunicorn masters, "host A" and "host B", two sync workers each, on
PostgreSQL and a shared Redis) serves the example project; each master also writes an access log
(worker pid, status, the request's tag), so every request the harness sends is matched to the
worker that answered it. Three checks, each run `--rounds` times on fresh keys made over REST:

- **disable**: a warm key is hammered by 8 threads (4 per host) from 0.3 s before
  `POST /v1/{user,system}/api_keys/{id}/disable` until 1 s after it returned. Any 200 for a request
  sent after it returned is a failure (send times are `time.monotonic()` in this process, taken
  before connecting, as in revocation.py), on either host; every worker of both hosts must have
  answered some of those requests. Then `.../enable`, and every request sent after it returned
  (0.6 s of the same load, from a fresh client address) must be a 200, on every worker.
- **remaining uses**: a key made with `remaining_uses` 100; 1,000 requests released at once by a
  barrier, half to each host, from 100 client addresses (10 each, so the failed-authentication
  throttle, 30 per address, never answers): exactly 100 must be 200 and 900 `401 "This API key
  has no uses left."`, and the key object must then show `remaining_uses` 0.
- **rate limit**: a key made with `rate_limit {"requests": 50, "per": 10}`, hammered by 8 threads
  (4 per host) from 2 s before a window boundary (floor(time / per), as the server counts) to 2 s
  after it. A request is counted in the window of its send and answer wall times when both fall
  in one window, as "at the edge" otherwise: no window may have more than 50 certain 200s (once a
  worker's cache breaker opened, a Redis call timing out, more than 50 on any one worker), a
  window with 429s must have had 50 with those at its edge (no refusal before the limit), and
  some request must be refused (else nothing was tested); every refusal must be a 429 with
  `RateLimit-Limit: 50`, `RateLimit-Remaining: 0`, `RateLimit-Reset` and `Retry-After`.

Any 5xx or transport error fails, as does a traceback in the gunicorn logs.

    python stress/restrictions.py [--quick] [--rounds N] [--only disable,uses,rate]
        [--write docs/reliability.md] [--app-dir PATH] [--cache-url URL] [--database NAME]
        [--budget SECONDS]

Exit status: 0 passed, 1 a failure seen, 2 harness error, 3 deadline or SIGTERM, 130 Ctrl-C.
It drops and re-creates its own database (phoenix_restrictions) and flushes Redis db 12 (the
default `--cache-url`). Traffic goes to 127.0.0.1 only, from client addresses in 127.0.0.0/8.
No plaintext key, secret or password is printed or written: every line is redacted.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import math
import os
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import put_section
from revocation import (
    JSON_MARKER,
    LOOPBACK,
    REPO,
    STATUS_ERROR,
    Config,
    Harness,
    HarnessError,
    cache_text,
    markdown_table,
    redact,
    run_guarded,
    say,
    text_table,
    versions,
)

HOSTS = ("A", "B")
PATHS = ("/api/hello/", "/v1/user")
WORKERS_PER_HOST = 2  # revocation.py's `gunicorn -w 2`
LOAD_THREADS_PER_HOST = 4
PRELOAD = 0.3  # seconds of load before the disable
TAIL = 1.0  # seconds of load after the disable returned
ENABLED_LOAD = 0.6  # seconds of load after the enable returned
WARM_REQUESTS = 8  # per host, before the disable
USES = 100
USE_REQUESTS = 1000
USE_SOURCES = 100  # client addresses for the remaining-uses burst: 10 requests each
RATE = {"requests": 50, "per": 10}
RATE_EDGE = 2.0  # the load runs from this long before a window boundary to this long after
OWNER = "stress-r-owner"
DISABLED = "This API key is disabled."
NO_USES = "This API key has no uses left."
REQUEST_TIMEOUT = 30.0


# HTTP ----------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: str

    @property
    def detail(self) -> str:
        try:
            value = json.loads(self.body)
        except ValueError:
            return ""
        return str(value.get("detail", "")) if isinstance(value, dict) else ""

    def data(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)["data"]
        except (ValueError, KeyError, TypeError):
            return {}
        return value if isinstance(value, dict) else {}


def call(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    source: str = LOOPBACK,
    timeout: float = REQUEST_TIMEOUT,
) -> Reply:
    """One request on a fresh connection from ``source``; status STATUS_ERROR on a transport
    error or a timeout."""
    headers, data = dict(headers), None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    bind = None if source == LOOPBACK else (source, 0)
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout, source_address=bind)
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    except (OSError, http.client.HTTPException):
        return Reply(STATUS_ERROR, {}, "")
    finally:
        connection.close()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@dataclass
class Sample:
    """One request with the key: its tag (in the query string, so the access log names the
    worker that answered), send time on both clocks, answer time, status and refusal."""

    tag: str
    host: str
    sent: float  # time.monotonic() before connecting
    wall: float  # time.time() before connecting
    done: float  # time.time() once answered
    status: int
    detail: str = ""  # the body's detail, for refusals
    # A 429's RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset and Retry-After.
    rate: tuple[str, str, str, str] | None = None

    @property
    def broken(self) -> bool:
        return self.status >= 500 or self.status == STATUS_ERROR


_tags = itertools.count()


def send(port: int, host: str, path: str, credential: str, source: str, prefix: str) -> Sample:
    tag = f"{prefix}.{next(_tags)}"
    sent, wall = time.monotonic(), time.time()
    reply = call(port, "GET", f"{path}?t={tag}", bearer(credential), source=source)
    sample = Sample(tag, host, sent, wall, time.time(), reply.status)
    if reply.status != 200:
        sample.detail = reply.detail
    if reply.status == 429 and "ratelimit-limit" in reply.headers:
        h = reply.headers
        sample.rate = (
            h["ratelimit-limit"],
            h.get("ratelimit-remaining", ""),
            h.get("ratelimit-reset", ""),
            h.get("retry-after", ""),
        )
    return sample


def statuses(samples: list[Sample]) -> Counter[int]:
    return Counter(sample.status for sample in samples)


def format_statuses(counts: Counter[int]) -> str:
    return ", ".join(
        f"{'error' if code == STATUS_ERROR else code}: {n}" for code, n in sorted(counts.items())
    )


class Load:
    """LOAD_THREADS_PER_HOST threads per host send GETs with one credential, alternating paths,
    until ``finish`` (or until time.time() reaches ``until``); ``finish`` returns the samples."""

    def __init__(
        self, ports: dict[str, int], credential: str, source: str, prefix: str, until: float
    ) -> None:
        self.stop = threading.Event()
        self.outs: list[list[Sample]] = []
        self.threads = []
        for host in HOSTS:
            for n in range(LOAD_THREADS_PER_HOST):
                out: list[Sample] = []
                self.outs.append(out)
                args = (ports[host], host, n, credential, source, prefix, until, out)
                self.threads.append(threading.Thread(target=self.load, args=args, daemon=True))
        for thread in self.threads:
            thread.start()

    def load(
        self,
        port: int,
        host: str,
        offset: int,
        credential: str,
        source: str,
        prefix: str,
        until: float,
        out: list[Sample],
    ) -> None:
        i = offset
        while not self.stop.is_set() and not (until and time.time() >= until):
            out.append(send(port, host, PATHS[i % 2], credential, source, prefix))
            i += 1

    def finish(self) -> list[Sample]:
        self.stop.set()
        for thread in self.threads:
            thread.join(REQUEST_TIMEOUT + 2)
        return [sample for out in self.outs for sample in out]


def workers_per_host(samples: list[Sample], workers: dict[str, str]) -> dict[str, int]:
    """Host -> how many of its workers answered some of ``samples``."""
    seen = {workers[s.tag] for s in samples if s.tag in workers}
    return {host: sum(w.startswith(f"{host}:") for w in seen) for host in HOSTS}


def successes_per_worker(samples: list[Sample], workers: dict[str, str]) -> dict[str, int]:
    return dict(Counter(workers.get(s.tag, "?") for s in samples if s.status == 200))


def missing_workers(seen: dict[str, int], when: str = "") -> list[str]:
    short = [host for host in HOSTS if seen.get(host, 0) < WORKERS_PER_HOST]
    if not short:
        return []
    counts = ", ".join(f"host {host} {seen.get(host, 0)}" for host in short)
    return [f"not every worker answered{when}: {counts} of {WORKERS_PER_HOST}"]


# Keys and results ----------------------------------------------------------------------------


@dataclass
class Key:
    name: str
    kind: str  # "user" (the owner's, made with basic auth) or "system" (the admin secret)
    restrictions: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    plaintext: str = field(default="", repr=False)

    def route(self, suffix: str = "") -> str:
        return f"/v1/{self.kind}/api_keys/{self.id}{suffix}"


@dataclass
class DisableTrial:
    number: int
    key: Key
    by: str  # who disables: "own key" or "admin secret"
    disable_host: str
    enable_host: str
    samples: list[Sample] = field(default_factory=list)  # warm-up and load around the disable
    enabled: list[Sample] = field(default_factory=list)  # load after the enable returned
    disable_start: float = 0.0
    disable_end: float = 0.0
    enable_end: float = 0.0
    errors: list[str] = field(default_factory=list)
    workers_after: dict[str, int] = field(default_factory=dict)  # host -> workers answering
    workers_enabled: dict[str, int] = field(default_factory=dict)
    trips: int = 0  # the workers' cache breaker opening (Redis timed out) during the trial

    @property
    def after(self) -> list[Sample]:
        return [s for s in self.samples if s.sent >= self.disable_end]

    @property
    def leaks(self) -> list[Sample]:
        return [s for s in self.after if s.status == 200]

    @property
    def refused_enabled(self) -> list[Sample]:
        return [s for s in self.enabled if s.status != 200]

    def findings(self) -> list[str]:
        found = list(self.errors)
        if self.leaks:
            latest = max(s.sent for s in self.leaks) - self.disable_end
            hosts = "+".join(sorted({s.host for s in self.leaks}))
            found.append(
                f"{len(self.leaks)} request(s) sent after the disable returned were accepted "
                f"(host {hosts}, the latest sent {latest * 1000:.0f} ms after it)"
            )
        before = [s for s in self.samples if s.sent < self.disable_start and s.status != 200]
        if before:
            found.append(f"refused before the disable: {format_statuses(statuses(before))}")
        odd = Counter(
            f"{s.status} {s.detail}" for s in self.after if s.status not in (200, 401, 429)
        )
        odd.update(
            f"401 {s.detail}" for s in self.after if s.status == 401 and s.detail != DISABLED
        )
        if odd:
            found.append(f"unexpected refusals after the disable: {dict(odd)}")
        if not self.after:
            found.append("no request was sent after the disable returned")
        if self.refused_enabled:
            counts = Counter(f"{s.status} {s.detail}".strip() for s in self.refused_enabled)
            found.append(f"refused after the enable returned: {dict(counts)}")
        if self.disable_end and not self.enabled:
            found.append("no request was sent after the enable returned")
        if self.after:
            found += missing_workers(self.workers_after, " after the disable")
        if self.enabled:
            found += missing_workers(self.workers_enabled, " after the enable")
        broken = [s for s in self.samples + self.enabled if s.broken]
        if broken:
            found.append(f"{len(broken)} 5xx or transport error(s)")
        return found


@dataclass
class UsesRun:
    number: int
    key: Key
    samples: list[Sample] = field(default_factory=list)
    remaining: Any = None  # the key object's remaining_uses afterwards
    probes: list[int] = field(default_factory=list)  # statuses of probes afterwards, both hosts
    per_worker: dict[str, int] = field(default_factory=dict)  # worker -> 200s
    workers: dict[str, int] = field(default_factory=dict)  # host -> workers that answered
    seconds: float = 0.0
    trips: int = 0
    errors: list[str] = field(default_factory=list)

    def findings(self) -> list[str]:
        found = list(self.errors)
        counts = statuses(self.samples)
        expected = Counter({200: USES, 401: USE_REQUESTS - USES})
        if counts != expected:
            found.append(f"answers {format_statuses(counts)}, expected 200: {USES}, 401: 900")
        others = Counter(s.detail for s in self.samples if s.status == 401 and s.detail != NO_USES)
        if others:
            found.append(f"401s that are not 'no uses left': {dict(others)}")
        if self.remaining != 0:
            found.append(f"the key shows remaining_uses {self.remaining!r} afterwards, not 0")
        if any(status != 401 for status in self.probes):
            found.append(f"probes afterwards answered {self.probes}, expected 401")
        found += missing_workers(self.workers)
        return found


@dataclass
class Window:
    """One rate-limit window: requests sent and answered in it, their 200s and 429s, and the
    200s of requests that straddle its start or end (the server counted them in one of two)."""

    requests: int = 0
    ok: int = 0
    limited: int = 0
    edge: int = 0


@dataclass
class RateRun:
    number: int
    key: Key
    boundary: float = 0.0  # the window boundary the load straddles (time.time())
    samples: list[Sample] = field(default_factory=list)
    per_worker: dict[str, int] = field(default_factory=dict)  # worker -> 200s
    workers: dict[str, int] = field(default_factory=dict)  # host -> workers that answered
    worker_of: dict[str, str] = field(default_factory=dict, repr=False)  # tag -> worker
    trips: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def per(self) -> int:
        return int(RATE["per"])

    def windows(self) -> dict[int, Window]:
        """The requests of each window the load touched, by floor(time / per)."""
        found: dict[int, Window] = {}
        for s in self.samples:
            first, last = int(s.wall // self.per), int(s.done // self.per)
            for number in range(first, last + 1):
                window = found.setdefault(number, Window())
                if first != last:
                    window.edge += s.status == 200
                else:
                    window.requests += 1
                    window.ok += s.status == 200
                    window.limited += s.status == 429
        return dict(sorted(found.items()))

    def findings(self) -> list[str]:
        found = list(self.errors)
        limit = int(RATE["requests"])
        windows = self.windows()
        for number, window in windows.items():
            # The documented bound: the limit across every worker while the shared count answers;
            # once a worker's breaker opened (Redis too slow), the limit per worker.
            per_worker = self.window_counts(number)
            bound_kept = self.trips and max(per_worker.values(), default=0) <= limit
            if window.ok > limit and not bound_kept:
                found.append(
                    f"window {number}: {window.ok} successes, more than {limit} (per worker: "
                    f"{self.window_workers(number)}; the workers' cache breaker opened "
                    f"{self.trips} time(s) during the run)"
                )
            elif window.limited and window.ok + window.edge < limit:
                found.append(
                    f"window {number}: {window.limited} 429s after only {window.ok} "
                    f"(+{window.edge} at its edge) successes"
                )
        if not any(window.limited for window in windows.values()):
            found.append("no request was refused: the limit was never reached, nothing tested")
        odd = Counter(s.status for s in self.samples if s.status not in (200, 429))
        if odd:
            found.append(f"answers other than 200 and 429: {format_statuses(odd)}")
        bad = Counter()
        for s in self.samples:
            if s.status != 429:
                continue
            if s.rate is None:
                bad[f"429 without RateLimit-*: {s.detail}"] += 1
                continue
            limit_h, remaining, reset, retry = s.rate
            if limit_h != str(limit) or remaining != "0":
                bad[f"RateLimit-Limit {limit_h}, -Remaining {remaining}"] += 1
            if not (reset.isdigit() and 1 <= int(reset) <= self.per):
                bad[f"RateLimit-Reset {reset!r}"] += 1
            if not retry.isdigit():
                bad[f"Retry-After {retry!r}"] += 1
        if bad:
            found.append(f"429s with wrong headers: {dict(bad)}")
        found += missing_workers(self.workers)
        return found

    def window_counts(self, window: int) -> Counter[str]:
        """The certain successes of ``window`` per worker."""
        return Counter(
            self.worker_of.get(s.tag, "?")
            for s in self.samples
            if s.status == 200 and int(s.wall // self.per) == int(s.done // self.per) == window
        )

    def window_workers(self, window: int) -> str:
        counts = self.window_counts(window)
        return ", ".join(f"{worker} {n}" for worker, n in sorted(counts.items()))

    def summary(self) -> str:
        parts = []
        for number, window in self.windows().items():
            at_edge = f" +{window.edge} at its edge" if window.edge else ""
            parts.append(f"window {number}: {window.ok}{at_edge} of {window.requests}")
        return "; ".join(parts)


# The harness ---------------------------------------------------------------------------------

SEED_SCRIPT = f"""
import json, os
import phoenix_apikeys
from django.contrib.auth import get_user_model
get_user_model().objects.create_user(
    {OWNER!r}, {OWNER!r} + "@example.invalid", os.environ["STRESS_PASSWORD"]
)
print({JSON_MARKER!r} + json.dumps({{"module": phoenix_apikeys.__file__}}))
"""


class Restrictions(Harness):
    """revocation.py's harness, with an access log per host (tag, worker pid, status)."""

    sources = itertools.count()

    def server_options(self, host: str) -> list[str]:
        log = self.workdir / f"access-{host}.log"
        return ["--access-logfile", str(log), "--access-logformat", "%(p)s %(s)s %(q)s"]

    def source(self) -> str:
        """A client address of its own: 127.0.40.1 onwards."""
        n = next(self.sources)
        return f"127.0.{40 + n // 250}.{1 + n % 250}"

    def workers(self) -> dict[str, str]:
        """Tag -> "host:pid" of the worker that answered it, from the access logs."""
        found = {}
        for host in HOSTS:
            path = self.workdir / f"access-{host}.log"
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                pid, _, query = [*line.split(" ", 2), "", ""][:3]
                match = re.fullmatch(r"t=([\w.]+)", query.strip())
                if match:
                    found[match.group(1)] = f"{host}:{pid.strip('<>')}"
        return found

    def trips(self) -> int:
        """How often a worker's breaker for the key cache has opened so far (its log line)."""
        return sum(
            path.read_text(errors="replace").count("Cache 'default' failed (")
            for path in self.workdir.glob("gunicorn-*.log")
        )

    def seed(self) -> None:
        self.manage("migrate", "--noinput")
        result = self.shell_json(SEED_SCRIPT, {**self.env, "STRESS_PASSWORD": self.admin_password})
        if not Path(result["module"]).resolve().is_relative_to(self.config.app_dir):
            raise HarnessError(f"phoenix_apikeys imported from {result['module']}")

    def manager(self, kind: str) -> dict[str, str]:
        """User keys are made by their owner (basic auth); everything else uses the secret."""
        if kind == "user":
            pair = base64.b64encode(f"{OWNER}:{self.admin_password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return bearer(self.admin_secret)

    def mint(self, key: Key) -> None:
        path = f"/v1/{key.kind}/api_keys"
        body = {"data": {"name": key.name, **key.restrictions}}
        reply = call(self.ports["A"], "POST", path, self.manager(key.kind), body)
        data = reply.data()
        if reply.status != 201 or "key" not in data:
            raise HarnessError(f"POST {path}: {reply.status} {reply.detail}")
        for name, value in key.restrictions.items():
            if data.get(name) != value:
                raise HarnessError(f"POST {path}: {name} is {data.get(name)!r}, not {value!r}")
        key.id, key.plaintext = data["id"], data["key"]

    def key_object(self, key: Key) -> dict[str, Any]:
        """The key as the REST listing shows it (read with the admin secret)."""
        path = "/v1/users/api_keys?limit=1000" if key.kind == "user" else "/v1/system/api_keys"
        reply = call(self.ports["B"], "GET", path, bearer(self.admin_secret))
        if reply.status != 200:
            raise HarnessError(f"GET {path}: {reply.status}")
        for entry in json.loads(reply.body)["data"]:
            if entry["id"] == key.id:
                return dict(entry)
        raise HarnessError(f"{key.name} is not listed by GET {path}")

    def hammer(self, key: Key, source: str, prefix: str, until: float = 0.0) -> Load:
        """Start LOAD_THREADS_PER_HOST threads per host sending GETs with the key."""
        return Load(self.ports, key.plaintext, source, prefix, until)

    # Disable and enable under load -----------------------------------------------------------

    def switch(self, trial: DisableTrial, action: str, host: str, credential: str) -> None:
        reply = call(self.ports[host], "POST", trial.key.route(f"/{action}"), bearer(credential))
        disabled = action == "disable"
        if reply.status != 200 or reply.data().get("disabled") is not disabled:
            trial.errors.append(
                f"{action} on host {host}: {reply.status}, disabled={reply.data().get('disabled')}"
            )

    def disable_trial(self, trial: DisableTrial) -> None:
        trips = self.trips()
        key, prefix, source = trial.key, f"d{trial.number}", self.source()
        for i in range(WARM_REQUESTS * len(HOSTS)):
            host = HOSTS[i % 2]
            sample = send(self.ports[host], host, PATHS[i // 2 % 2], key.plaintext, source, prefix)
            trial.samples.append(sample)
        load = self.hammer(key, source, prefix)
        try:
            time.sleep(PRELOAD)
            trial.disable_start = time.monotonic()
            credential = key.plaintext if trial.by == "own key" else self.admin_secret
            self.switch(trial, "disable", trial.disable_host, credential)
            trial.disable_end = time.monotonic()
            time.sleep(TAIL)
        finally:
            trial.samples.extend(load.finish())
        # The load's address is past the failed-authentication limit by now (the disabled key's
        # 401s count): the enabled key is tried from a fresh one.
        self.switch(trial, "enable", trial.enable_host, self.admin_secret)
        trial.enable_end = time.monotonic()
        load = self.hammer(key, self.source(), f"e{trial.number}")
        time.sleep(ENABLED_LOAD)
        trial.enabled = load.finish()
        workers = self.workers()
        trial.workers_after = workers_per_host(trial.after, workers)
        trial.workers_enabled = workers_per_host(trial.enabled, workers)
        trial.trips = self.trips() - trips

    # Remaining uses --------------------------------------------------------------------------

    def uses_run(self, run: UsesRun) -> None:
        trips = self.trips()
        key, prefix = run.key, f"u{run.number}"
        sources = [self.source() for _ in range(USE_SOURCES)]
        gate = threading.Barrier(USE_REQUESTS + 1, timeout=60)
        results: list[Sample | None] = [None] * USE_REQUESTS

        def one(i: int) -> None:
            host, path = HOSTS[i % 2], PATHS[i // 2 % 2]
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                return
            results[i] = send(
                self.ports[host], host, path, key.plaintext, sources[i % USE_SOURCES], prefix
            )

        previous = threading.stack_size(256 * 1024)
        try:
            threads = [
                threading.Thread(target=one, args=(i,), daemon=True) for i in range(USE_REQUESTS)
            ]
            for thread in threads:
                thread.start()
        finally:
            threading.stack_size(previous)
        started = time.monotonic()
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            raise HarnessError("the 1,000 request threads did not all start within 60 s") from None
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 30)
        run.seconds = time.monotonic() - started
        run.samples = [sample for sample in results if sample is not None]
        if len(run.samples) < USE_REQUESTS:
            run.errors.append(f"{USE_REQUESTS - len(run.samples)} request(s) never finished")
        run.trips = self.trips() - trips
        run.remaining = self.key_object(key).get("remaining_uses")
        probe = self.source()
        run.probes = [
            send(self.ports[host], host, path, key.plaintext, probe, prefix).status
            for host in HOSTS
            for path in PATHS
        ]
        workers = self.workers()
        run.per_worker = successes_per_worker(run.samples, workers)
        run.workers = workers_per_host(run.samples, workers)

    # Rate limit ------------------------------------------------------------------------------

    def rate_run(self, run: RateRun) -> None:
        """The load from RATE_EDGE before a window boundary to RATE_EDGE after it."""
        per, now = run.per, time.time()
        boundary = (math.floor(now / per) + 1) * per
        if boundary - RATE_EDGE < now + 0.05:
            boundary += per
        run.boundary = boundary
        time.sleep(max(0.0, boundary - RATE_EDGE - time.time()))
        trips = self.trips()
        load = self.hammer(run.key, self.source(), f"r{run.number}", until=boundary + RATE_EDGE)
        while any(thread.is_alive() for thread in load.threads):
            time.sleep(0.1)
        run.samples = load.finish()
        run.trips = self.trips() - trips
        workers = self.workers()
        run.worker_of = workers
        run.per_worker = successes_per_worker(run.samples, workers)
        run.workers = workers_per_host(run.samples, workers)


# Running and reporting -----------------------------------------------------------------------


@dataclass
class Outcome:
    disables: list[DisableTrial]
    uses: list[UsesRun]
    rates: list[RateRun]
    tracebacks: int = 0
    wall: float = 0.0
    setup: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # the 1-minute load average at the start and end

    def tally(self) -> str:
        parts = []
        for name, results in (
            ("disable under load", self.disables),
            ("remaining uses", self.uses),
            ("rate limit", self.rates),
        ):
            ok = sum(not result.findings() for result in results)  # type: ignore[attr-defined]
            parts.append(f"{name} {ok} of {len(results)} ok")
        return ", ".join(parts)

    def failures(self) -> list[str]:
        found = [
            f"disable trial {t.number + 1} ({t.key.kind}): {finding}"
            for t in self.disables
            for finding in t.findings()
        ]
        found += [
            f"remaining uses run {r.number + 1} ({r.key.kind}): {finding}"
            for r in self.uses
            for finding in r.findings()
        ]
        found += [
            f"rate limit run {r.number + 1} ({r.key.kind}): {finding}"
            for r in self.rates
            for finding in r.findings()
        ]
        if self.tracebacks:
            found.append(f"{self.tracebacks} traceback(s) in the gunicorn logs")
        return found


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of each check (CI)")
    parser.add_argument("--rounds", type=int, help="rounds of each check (default 1 quick, 3)")
    parser.add_argument("--write", type=Path, help="write this script's part of a Markdown page")
    parser.add_argument("--app-dir", type=Path, default=REPO, help="checkout to serve")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/12", help="CACHE_URL")
    parser.add_argument("--database", default="phoenix_restrictions", help="PostgreSQL database")
    parser.add_argument("--budget", type=int, help="hard deadline in seconds")
    parser.add_argument("--only", default="", help=f"comma-separated checks: {', '.join(CHECKS)}")
    args = parser.parse_args(argv)
    only = tuple(name for name in args.only.split(",") if name)
    if set(only) - set(CHECKS):
        parser.error(f"--only: checks are {', '.join(CHECKS)}")
    rounds = args.rounds or (1 if args.quick else 3)
    if not 1 <= rounds <= 10:
        parser.error("--rounds must be between 1 and 10")
    system = args.database in ("postgres", "template0", "template1")
    if system or not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", args.database):
        parser.error("--database: a plain lowercase identifier, not a system database")
    if not args.cache_url.startswith("redis://"):
        parser.error("--cache-url: a Redis URL (the limits are counted there)")
    # Measured here, other jobs loading the machine: --quick 32-72 s, 3 rounds 74-104 s.
    default = 100 + rounds * 40
    return Config(
        quick=args.quick,
        trials=rounds,
        app_dir=args.app_dir.resolve(),
        cache_url=args.cache_url,
        database=args.database,
        write=args.write,
        budget=args.budget or default,
        only=only,
        skip_checks=False,
    )


CHECKS = ("disable", "uses", "rate")


def make_plan(rounds: int, only: tuple[str, ...] = ()) -> Outcome:
    """Disable: two trials a round, a user key (disabled with itself, then with the secret) and
    a system key, disabled on host A or B and enabled on the other. Uses and rate limit: one
    run a round, kinds alternating (the quick run has one of each kind)."""
    disables = []
    for n in range(2 * rounds):
        kind = ("user", "system")[n % 2]
        by = "own key" if kind == "user" and n % 4 == 0 else "admin secret"
        first, second = (("A", "B"), ("B", "A"))[n // 2 % 2]
        disables.append(DisableTrial(n, Key(f"rs-d{n:02d}", kind), by, first, second))
    uses = [
        UsesRun(n, Key(f"rs-u{n:02d}", ("system", "user")[n % 2], {"remaining_uses": USES}))
        for n in range(rounds)
    ]
    rates = [
        RateRun(n, Key(f"rs-r{n:02d}", ("user", "system")[n % 2], {"rate_limit": dict(RATE)}))
        for n in range(rounds)
    ]
    return Outcome(
        disables if "disable" in (only or CHECKS) else [],
        uses if "uses" in (only or CHECKS) else [],
        rates if "rate" in (only or CHECKS) else [],
    )


def disable_line(t: DisableTrial) -> list[str]:
    after = t.after
    by_host = Counter(s.host for s in after)
    details = Counter(s.status for s in after)
    return [
        str(t.number + 1),
        t.key.kind,
        f"{t.by} on {t.disable_host}",
        str(len(t.samples)),
        f"{len(after)} (A {by_host['A']}, B {by_host['B']})",
        format_statuses(details),
        str(len(t.leaks)),
        "+".join(f"{h}:{t.workers_after.get(h, 0)}" for h in HOSTS),
        f"{len(t.enabled) - len(t.refused_enabled)}/{len(t.enabled)} on "
        + "+".join(f"{h}:{t.workers_enabled.get(h, 0)}" for h in HOSTS),
        str(t.trips),
        "FAIL" if t.findings() else "ok",
    ]


DISABLE_HEADERS = [
    "trial",
    "kind",
    "disabled by",
    "requests",
    "sent after disable",
    "their answers",
    "200 after",
    "workers after",
    "200 after enable (workers)",
    "breaker trips",
    "result",
]


def uses_line(r: UsesRun) -> list[str]:
    spread = ", ".join(f"{w} {n}" for w, n in sorted(r.per_worker.items()))
    return [
        str(r.number + 1),
        r.key.kind,
        str(len(r.samples)),
        format_statuses(statuses(r.samples)),
        str(sum(s.detail == NO_USES for s in r.samples)),
        str(r.remaining),
        spread,
        f"{r.seconds:.1f}",
        str(r.trips),
        "FAIL" if r.findings() else "ok",
    ]


USES_HEADERS = [
    "run",
    "kind",
    "requests",
    "answers",
    "'no uses left'",
    "remaining_uses after",
    "200s per worker",
    "seconds",
    "breaker trips",
    "result",
]


def rate_line(r: RateRun) -> list[str]:
    spread = ", ".join(f"{w} {n}" for w, n in sorted(r.per_worker.items()))
    return [
        str(r.number + 1),
        r.key.kind,
        str(len(r.samples)),
        format_statuses(statuses(r.samples)),
        r.summary(),
        spread,
        str(r.trips),
        "FAIL" if r.findings() else "ok",
    ]


RATE_HEADERS = [
    "run",
    "kind",
    "requests",
    "answers",
    "200s per window (of requests in it)",
    "200s per worker",
    "breaker trips",
    "result",
]


def markdown(config: Config, outcome: Outcome, argv: list[str]) -> str:
    failures = outcome.failures()
    verdict = (
        f"**Failed**: {outcome.tally()}. Details under Failures."
        if failures
        else "**Passed**: no request sent after a disable returned was accepted, on any worker "
        "of either host, and every request after the enable was; exactly 100 of 1,000 "
        "concurrent requests spent a key's 100 uses; no window let more than 50 requests "
        "through a limit of 50 per 10 s."
    )
    info = "\n".join(f"  - {name}: {value}" for name, value in versions(config).items())
    shown = "\n".join(f"- {f}" for f in failures) or "None."
    over = [r for r in outcome.rates if any("successes, more than" in f for f in r.findings())]
    if over:
        tripped = sum(r.trips > 0 for r in over)
        clean = [r for r in outcome.rates if not r.trips]
        verdict += (
            f"\n\n{len(over)} of {len(outcome.rates)} rate-limit runs let more than "
            f"{RATE['requests']} requests through one window; in {tripped} of them a worker's "
            "breaker for the cache had opened during the run (a Redis call slower than the "
            "example project's 50 ms `SOCKET_TIMEOUT` on a loaded machine). That worker then "
            "counts the key's requests in its own memory for `CACHE_RETRY_INTERVAL`, from zero "
            "and on top of what the shared count already let through in the window (see "
            "`stress/README.md`, What it found)."
        )
        if clean:
            within = sum(not r.findings() for r in clean)
            verdict += f" Runs with no breaker trip: {len(clean)}, {within} within the limit."
    return f"""## Restrictions under load: disable, remaining uses, rate limit

Do a key's restrictions hold across processes and hosts? `stress/restrictions.py` checks it on
revocation.py's two gunicorn hosts (two sync workers each, PostgreSQL and Redis); an access log
per host names the worker that answered each request (see `stress/README.md`).

{verdict}

- Command: `python stress/restrictions.py {" ".join(argv)}`
- Wall time {outcome.wall:.0f} s, of which set-up {outcome.setup:.0f} s; key cache and counters
  {cache_text(config)}; database `{config.database}`; load average (1 min) {outcome.load[0]:.1f}
  at the start, {outcome.load[1]:.1f} at the end ({os.cpu_count()} CPUs, shared with other jobs)
- Versions:
{info}

### Disable under load

A warm key, {LOAD_THREADS_PER_HOST} load threads per host from {PRELOAD} s before
`POST .../disable` until {TAIL} s after it returned; then `POST .../enable` (admin secret, on the
other host) and {ENABLED_LOAD} s of the same load from a fresh client address. *workers after*:
the workers per host that answered requests sent after the disable returned (all of them must,
and none may answer 200); after the enable, every answer must be 200.

{markdown_table(DISABLE_HEADERS, [disable_line(t) for t in outcome.disables])}

### Remaining uses

A key made over REST with `remaining_uses` {USES}; {USE_REQUESTS:,} requests released at once,
half to each host, from {USE_SOURCES} client addresses: exactly {USES} must be 200, the rest
`401 "{NO_USES}"`, and the key must show `remaining_uses` 0 afterwards.

{markdown_table(USES_HEADERS, [uses_line(r) for r in outcome.uses])}

### Rate limit

A key made over REST with `rate_limit {json.dumps(RATE)}`; {LOAD_THREADS_PER_HOST} load threads
per host from {RATE_EDGE} s before a window boundary (`floor(time / per)`, as the server counts)
to {RATE_EDGE} s after it. A request is in a window when its send and answer times both are, else
"at the edge". No window may pass more than 50 requests that are certainly in it; a window with
429s must have passed 50 with those at its edge (no refusal before the limit); every refusal must
be a 429 with `RateLimit-Limit: 50`, `RateLimit-Remaining: 0`, `RateLimit-Reset` and
`Retry-After`. *breaker trips*: how often a worker's breaker for the cache opened during the run
(its log line "Cache 'default' failed"), after which that worker counts on its own.

{markdown_table(RATE_HEADERS, [rate_line(r) for r in outcome.rates])}

### Failures

{shown}

Tracebacks in the gunicorn logs: {outcome.tracebacks}.
"""


def report(config: Config, outcome: Outcome, argv: list[str]) -> list[str]:
    tables = (
        ("disable-under-load", outcome.disables, DISABLE_HEADERS, disable_line),
        ("remaining-uses", outcome.uses, USES_HEADERS, uses_line),
        ("rate-limit", outcome.rates, RATE_HEADERS, rate_line),
    )
    for name, results, headers, line in tables:
        if results:
            say(f"\n{name}")
            say(text_table(headers, [line(r) for r in results]))  # type: ignore[operator]
    failures = outcome.failures()
    say("")
    for name, results, _, _ in tables:
        failed = sum(bool(r.findings()) for r in results)  # type: ignore[attr-defined]
        if not results:
            say(f"SKIP {name}: not run (--only)")
        else:
            say(f"{'FAIL' if failed else 'PASS'} {name}: {len(results) - failed}/{len(results)} ok")
    for failure in failures:
        say(f"FAILURE: {failure}")
    say(
        f"tracebacks in gunicorn logs: {outcome.tracebacks}; wall time {outcome.wall:.1f} s; "
        f"load average {outcome.load[0]:.1f} at the start, {outcome.load[1]:.1f} at the end"
    )
    if config.write:
        put_section(config.write, "restrictions", redact(markdown(config, outcome, argv)))
        say(f"wrote the restrictions part of {config.write}")
    return failures


def execute(config: Config, harness: Restrictions) -> Outcome:
    outcome = make_plan(config.trials, config.only)
    start_load = os.getloadavg()[0]
    say(f"serving {config.app_dir}, {cache_text(config)}; logs in {harness.workdir}")
    harness.reset_stores()
    harness.seed()
    harness.start_servers()
    for key in [t.key for t in outcome.disables] + [r.key for r in outcome.uses + outcome.rates]:
        harness.mint(key)
    outcome.setup = harness.elapsed()
    say(f"[{outcome.setup:6.1f}s] set up: hosts {harness.ports}")
    for t in outcome.disables:
        harness.disable_trial(t)
        found = t.findings()
        say(
            f"[{harness.elapsed():6.1f}s] disable {t.number + 1}/{len(outcome.disables)} "
            f"{t.key.kind:<6} by {t.by} on {t.disable_host}: {len(t.after)} sent after it, "
            f"200 after {len(t.leaks)}, workers {t.workers_after}; enable on {t.enable_host}: "
            f"{len(t.enabled) - len(t.refused_enabled)}/{len(t.enabled)} 200  "
            + (f"FAIL: {'; '.join(found)}" if found else "ok")
        )
    for r in outcome.uses:
        harness.uses_run(r)
        found = r.findings()
        say(
            f"[{harness.elapsed():6.1f}s] remaining uses {r.number + 1}/{len(outcome.uses)} "
            f"{r.key.kind:<6} {format_statuses(statuses(r.samples))} in {r.seconds:.1f} s, "
            f"remaining_uses {r.remaining}  " + (f"FAIL: {'; '.join(found)}" if found else "ok")
        )
    for r in outcome.rates:
        harness.rate_run(r)
        found = r.findings()
        say(
            f"[{harness.elapsed():6.1f}s] rate limit {r.number + 1}/{len(outcome.rates)} "
            f"{r.key.kind:<6} {format_statuses(statuses(r.samples))}; {r.summary()}  "
            + (f"FAIL: {'; '.join(found)}" if found else "ok")
        )
    outcome.tracebacks = harness.log_tracebacks()
    outcome.wall = harness.elapsed()
    outcome.load = (start_load, os.getloadavg()[0])
    return outcome


def main(argv: list[str]) -> int:
    config = parse_args(argv)
    harness = Restrictions(config)

    def body() -> int:
        outcome = execute(config, harness)
        harness.stop_servers()
        failures = report(config, outcome, argv)
        say("FAILED" if failures else "PASSED")
        return 1 if failures else 0

    return run_guarded(harness, config.budget, body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
