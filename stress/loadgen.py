"""Load generator for stress/faults.py, run as its own process so its timing does not share a
GIL with the harness that injects the faults.

It reads one JSON plan from stdin (credentials included: they never appear on a command line),
sends requests from threads until SIGTERM or the plan's duration, and appends one CSV line per
request to the plan's output file:

    sent,host,kind,status,latency_ms,retry_after

``sent`` is ``time.monotonic()`` taken before connecting. CLOCK_MONOTONIC is one clock for the
whole machine on Linux, so the harness can compare it with its own revoke and fault times.
Status 0 is a transport error or a timeout. No credential is ever written: only its kind.

Each kind of traffic has its own client (source) address inside 127.0.0.0/8, which Linux
routes to loopback: the app throttles failed authentications per address, so the valid traffic
on 127.0.0.1 is never throttled by the unknown keys or garbage the plan also sends.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

PATHS = ("/api/hello/", "/v1/user")
STATUS_ERROR = 0


@dataclass(frozen=True)
class Traffic:
    """One kind of credential: header values, the weight in the mix, the source addresses."""

    kind: str
    headers: list[str | None]  # whole Authorization header values; None sends none
    weight: float
    sources: list[str]


@dataclass(frozen=True)
class Result:
    sent: float
    host: str
    kind: str
    status: int
    latency_ms: float
    retry_after: str


def send(port: int, path: str, header: str | None, source: str, timeout: float) -> Result:
    """One request on a fresh connection from ``source``; gunicorn's sync workers close every
    connection after the response anyway."""
    headers = {"Authorization": header} if header is not None else {}
    bind = None if source == "127.0.0.1" else (source, 0)
    sent = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=bind)
    status, retry_after = STATUS_ERROR, ""
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        status, retry_after = response.status, response.getheader("Retry-After") or ""
    except (OSError, http.client.HTTPException):
        pass
    finally:
        connection.close()
    return Result(sent, "", "", status, (time.monotonic() - sent) * 1000, retry_after)


class Generator:
    """Threads per host: a weighted mix at a paced rate, and one that cycles the victim keys."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.ports: dict[str, int] = plan["ports"]
        self.mix = [Traffic(**entry) for entry in plan["mix"]]
        self.victims = [Traffic(**entry) for entry in plan["victims"]]
        self.threads_per_host = int(plan["threads_per_host"])
        self.interval = 1.0 / float(plan["rate_per_thread"])
        self.timeout = float(plan["timeout"])
        self.stop = threading.Event()
        self.results: list[Result] = []
        self.lock = threading.Lock()

    def record(self, result: Result, host: str, kind: str) -> None:
        with self.lock:
            self.results.append(
                Result(
                    result.sent, host, kind, result.status, result.latency_ms, result.retry_after
                )
            )

    def mixed(self, host: str, seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - a traffic mix, not a secret
        weights = [traffic.weight for traffic in self.mix]
        due, i = time.monotonic(), 0
        while not self.stop.is_set():
            traffic = rng.choices(self.mix, weights)[0]
            header = rng.choice(traffic.headers)
            source = traffic.sources[i % len(traffic.sources)]
            result = send(self.ports[host], PATHS[i % 2], header, source, self.timeout)
            self.record(result, host, traffic.kind)
            i += 1
            due = max(due + self.interval, time.monotonic() - self.interval)
            self.stop.wait(max(0.0, due - time.monotonic()))

    def victim(self, host: str) -> None:
        """Every victim key in turn, each from its own address, revoked or not."""
        i = 0
        while not self.stop.is_set() and self.victims:
            traffic = self.victims[i % len(self.victims)]
            result = send(
                self.ports[host], PATHS[i // len(self.victims) % 2], traffic.headers[0],
                traffic.sources[0], self.timeout,
            )  # fmt: skip
            self.record(result, host, traffic.kind)
            i += 1
            self.stop.wait(self.interval)

    def run(self, out: TextIO, duration: float) -> None:
        threads = [
            threading.Thread(target=self.mixed, args=(host, n * 7 + ord(host)), daemon=True)
            for host in self.ports
            for n in range(self.threads_per_host)
        ]
        threads += [
            threading.Thread(target=self.victim, args=(host,), daemon=True) for host in self.ports
        ]
        for thread in threads:
            thread.start()
        end = time.monotonic() + duration
        while not self.stop.wait(0.5):
            self.flush(out)
            if time.monotonic() > end:
                self.stop.set()
        for thread in threads:
            thread.join(self.timeout + 1)
        self.flush(out)

    def flush(self, out: TextIO) -> None:
        with self.lock:
            batch, self.results = self.results, []
        for r in batch:
            out.write(
                f"{r.sent:.6f},{r.host},{r.kind},{r.status},{r.latency_ms:.2f},{r.retry_after}\n"
            )
        out.flush()


def main() -> int:
    plan = json.loads(sys.stdin.read())
    generator = Generator(plan)

    def stop(signum: int, frame: FrameType | None) -> None:
        generator.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(plan["out"], "a", encoding="ascii") as out:
        print("ready", flush=True)
        generator.run(out, float(plan["duration"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
