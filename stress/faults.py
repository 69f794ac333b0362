"""Faults under load: does the app stay up and truthful when Redis or PostgreSQL fails?

Two gunicorn masters ("host A" and "host B", two sync workers each) serve the example project
through a TCP proxy of ours to PostgreSQL, with a Redis server of our own as the key cache. A
load generator (stress/loadgen.py, its own process) sends valid user keys, valid system keys,
the admin secret, unknown well-formed keys and garbage to both hosts for the whole run, while
this harness stops Redis, freezes it (SIGSTOP), restarts it empty, and cuts the database off
(the proxy refuses and drops connections), each in its own phase; a warm key is revoked while
Redis is stopped or frozen. A last phase trips the throttle of failed authentications.

    python stress/faults.py [--quick] [--write docs/reliability.md]

Fails (exit 1) on: any 5xx but a 503 while the database is cut off, a 503 outside that window,
a transport error, a valid credential refused, an unknown key or garbage accepted, a revoked key
accepted after its revoke returned, a request over 2 s during a fault (5 s elsewhere), no
recovery within 15 s of a fault's end, a traceback or a flood of outage lines in the logs.

It needs PostgreSQL on 127.0.0.1:5432 (user postgres; it drops and re-creates its own database,
phoenix_faults, and never stops the cluster) and redis-server on PATH (it starts its own on a
free port; the machine's Redis is never touched). Traffic goes to 127.0.0.1 only, from client
addresses in 127.0.0.0/8. No key or secret is printed or written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import django
import psycopg
import redis
from common import put_section
from revocation import (
    JSON_MARKER,
    LOOPBACK,
    PG_ADMIN_URL,
    REPO,
    Config,
    Deadline,
    Harness,
    HarnessError,
    code_version,
    deadline,
    free_port,
    markdown_table,
    redact,
    say,
    text_table,
)

PG_PORT = 5432
HOSTS = ("A", "B")
VALID = ("user", "system", "admin")
WORKERS = 4  # two masters, two sync workers each: the processes that log an outage
MAIN_SOURCE = "127.0.0.1"  # the valid traffic; never fails, so never throttled
GARBAGE_SOURCE = "127.0.0.2"  # garbage: throttled after FAILED_AUTH_LIMIT, 429 expected
UNKNOWN_SOURCES = [f"127.0.1.{n}" for n in range(1, 201)]  # each stays under the limit
THROTTLE_SOURCE = "127.0.4.1"  # the throttle phase's client
FAILED_AUTH_LIMIT = 30  # phoenix_apikeys.conf.DEFAULTS, which the example project keeps
CACHE_RETRY_INTERVAL = 5
STALL_IN_FAULT = 2.0  # seconds: the breaker and the socket timeouts must bound a request
STALL_ANYWHERE = 5.0
RECOVERY_LIMIT = 15.0  # seconds after a fault ends
# Outage lines per phase above which the log is flooded: one per worker per outage is expected;
# a loaded machine can add a breaker flap (a call over the 0.05 s timeout just after recovery),
# and the logs carry no timestamps, so a line at a phase boundary may count in either phase.
FLOOD = 3 * WORKERS
# A 503 sent up to this long before the cut (still in flight) or after the database is back (a
# worker's first reconnect) still belongs to the outage.
DB_GRACE = 1.0
LOG_PATTERNS = {
    "cache failed": "Cache 'default' failed",
    "cache answers": "Cache 'default' answers again",
    "db failed": "Database unavailable",
    "db answers": "Database answers again",
}
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# Configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    quick: bool
    write: Path | None
    database: str
    budget: int
    rounds: int
    pre: float  # seconds of load before each fault
    fault: float  # seconds Redis is down or frozen, or the database cut off
    post: float  # seconds watched after each fault ends
    threads_per_host: int = 3
    rate_per_thread: float = 30.0
    request_timeout: float = 10.0


def parse_args(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of faults (CI)")
    parser.add_argument("--write", type=Path, help="write the faults part of this Markdown page")
    parser.add_argument("--database", default="phoenix_faults", help="PostgreSQL database")
    parser.add_argument("--rounds", type=int, help="rounds of the four faults (default 1 quick, 3)")
    parser.add_argument("--budget", type=int, help="hard deadline in seconds")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    if not 1 <= rounds <= 6:
        parser.error("--rounds must be between 1 and 6")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", args.database) or args.database in (
        "postgres",
        "template0",
        "template1",
    ):
        parser.error("--database: a plain lowercase identifier, not a system database")
    pre, post = (3.0, 12.0) if args.quick else (4.0, 16.0)
    budget = args.budget or int(60 + rounds * 4 * (pre + 8 + post + 3) + 40)
    return Settings(args.quick, args.write, args.database, budget, rounds, pre, 8.0, post)


# Our own Redis and our own way to PostgreSQL -------------------------------------------------


class RedisServer:
    """A redis-server of our own on a free port: stopping or freezing it harms nobody else."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.pid = 0
        self.executable = shutil.which("redis-server") or ""
        if not self.executable:
            raise HarnessError("redis-server is not on PATH")

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=2)

    def start(self) -> None:
        pidfile = self.dir / "redis.pid"
        pidfile.unlink(missing_ok=True)
        command = [
            *(self.executable, "--port", str(self.port), "--bind", LOOPBACK),
            *("--save", "", "--appendonly", "no", "--daemonize", "yes"),
            *("--dir", str(self.dir), "--pidfile", str(pidfile)),
            *("--logfile", str(self.dir / "redis.log")),
        ]
        subprocess.run(command, check=True, timeout=10, capture_output=True)  # noqa: S603
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with contextlib.suppress(redis.RedisError, OSError, ValueError):
                if self.client().ping():
                    self.pid = int(pidfile.read_text().strip())
                    return
            time.sleep(0.02)
        raise HarnessError("our redis-server did not start")

    def shutdown(self) -> None:
        """SHUTDOWN NOSAVE, as an operator would: the data is gone."""
        with contextlib.suppress(redis.ConnectionError):
            self.client().shutdown(nosave=True)
        self.wait_gone(10)

    def wait_gone(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self.alive() and time.monotonic() < end:
            time.sleep(0.02)
        if self.alive():
            raise HarnessError("our redis-server did not stop")
        self.pid = 0

    def alive(self) -> bool:
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Cleanup in any state, frozen included; only the pid we started."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(HarnessError):
                self.wait_gone(5)

    def version(self) -> str:
        try:
            return str(self.client().info("server").get("redis_version", "?"))
        except redis.RedisError:
            return "?"


class DatabaseProxy:
    """A TCP forwarder 127.0.0.1:<port> -> PostgreSQL, in a thread of the harness.

    The example's DATABASE_URL points here, so the database can be cut off for the example
    alone: ``down()`` closes the listening socket (new connections are refused) and drops every
    forwarded connection (open ones break), without touching the shared PostgreSQL cluster.
    It also timestamps every chunk a client sends: the database round trips, seen from outside.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        self.round_trips: list[float] = []

    def start(self) -> None:
        self.thread.start()
        self.up()

    def call(self, coroutine: Callable[[], Coroutine[object, object, None]]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine(), self.loop).result(10)

    def up(self) -> None:
        self.call(self._open)

    def down(self) -> None:
        self.call(self._close)

    def stop(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.down()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    async def _open(self) -> None:
        self.server = await asyncio.start_server(self._handle, LOOPBACK, self.port)

    async def _close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(LOOPBACK, PG_PORT)
        except OSError:
            writer.transport.abort()
            return
        self.links.update((writer, upstream))
        try:
            await asyncio.gather(
                self._pipe(reader, upstream, count=True),
                self._pipe(upstream_reader, writer, count=False),
            )
        finally:
            self.links.difference_update((writer, upstream))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    self.round_trips.append(time.monotonic())
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()  # one side gone: the other goes too, as a network would


# Credentials ---------------------------------------------------------------------------------


@dataclass
class Credential:
    name: str
    kind: str  # "user" or "system"
    plaintext: str = field(repr=False, default="")
    id: str = ""


@dataclass
class Victim:
    """A warm key revoked during a cache outage; its own source address, so its refusals
    throttle nobody else."""

    number: int
    credential: Credential
    source: str

    @property
    def kind(self) -> str:
        return f"victim-{self.number}"


def unknown_key(prefix: str) -> str:
    """The format of phoenix_apikeys.keys.generate_key: prefix, 32 base62, CRC32 in 6 base62;
    well formed, so it costs the app a lookup, and never issued."""
    head = prefix + "".join(secrets.choice(BASE62) for _ in range(32))
    number, tail = zlib.crc32(head.encode("ascii")), []
    for _ in range(6):
        number, remainder = divmod(number, 62)
        tail.append(BASE62[remainder])
    return head + "".join(reversed(tail))


def garbage_headers() -> list[str | None]:
    """Headers a scanner or a broken client sends: every one must be refused (401, or 429 once
    the address is throttled; 403 for a request with no credential at all)."""
    well_formed = unknown_key("phxu_")
    wrong_checksum = well_formed[:-1] + ("0" if well_formed[-1] != "0" else "1")
    return [
        None,
        "Bearer",
        "Bearer a b",
        "Bearer phxu_short",
        f"Bearer {wrong_checksum}",
        f"Bearer not-a-key-{secrets.token_hex(8)}",
        "Bearer " + "x" * 5000,
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token abc",
    ]


SEED_SCRIPT = f"""
import json, os
from django.contrib.auth import get_user_model
from phoenix_apikeys.ids import key_id
from phoenix_apikeys.keys import KeyKind
from phoenix_apikeys.models import SystemKey, UserKey
User = get_user_model()
out = {{}}
for name, kind in json.loads(os.environ["FAULTS_KEYS"]):
    if kind == "user":
        owner = User.objects.create_user("u-" + name, name + "@example.invalid")
        key, plaintext = UserKey.objects.create_key(user=owner, name=name)
    else:
        key, plaintext = SystemKey.objects.create_key(name=name)
    out[name] = [plaintext, key_id(KeyKind(kind), key.pk)]
print({JSON_MARKER!r} + json.dumps(out))
"""


# Records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One request of the load generator's, as it recorded it."""

    sent: float
    host: str
    kind: str
    status: int
    latency: float  # seconds
    retry_after: str


def read_rows(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text().splitlines():
        sent, host, kind, status, latency, retry_after = line.split(",")
        rows.append(Row(float(sent), host, kind, int(status), float(latency) / 1000, retry_after))
    rows.sort(key=lambda row: row.sent)
    return rows


@dataclass
class Revoke:
    victim: Victim
    start: float
    end: float
    status: int


@dataclass
class Phase:
    name: str
    round: int
    start: float
    fault_start: float = 0.0
    fault_end: float = 0.0
    end: float = 0.0
    revoke: Revoke | None = None  # the revoke that took effect
    refused: Revoke | None = None  # one made during the outage, which the app must refuse
    logs: Counter[str] = field(default_factory=Counter)

    @property
    def label(self) -> str:
        return self.name if self.round < 0 else f"{self.name} #{self.round + 1}"

    @property
    def is_fault(self) -> bool:
        return self.name in FAULTS


FAULTS = ("redis-stop", "redis-freeze", "redis-restart", "pg-down")
PHASE_TEXT = {
    "baseline": "no fault",
    "redis-stop": "our Redis stopped (SHUTDOWN NOSAVE) for 8 s, then started empty; a warm "
    "user key revoked on host A 2.5 s into the outage",
    "redis-freeze": "our Redis frozen (SIGSTOP) for 8 s, then SIGCONT: its data, the revoked "
    "key's entry included, comes back; a warm system key revoked on host A 2.5 s in",
    "redis-restart": "our Redis restarted (SHUTDOWN NOSAVE, start): an empty cache at once",
    "pg-down": "the proxy to PostgreSQL refuses new connections and drops open ones for 8 s",
    "throttle": "unknown keys from one client address until 429; valid keys from it after",
}


# The harness ---------------------------------------------------------------------------------


class FaultHarness(Harness):
    """revocation.py's harness (database, gunicorn masters, manage.py) serving through the proxy
    and our Redis, plus the load generator and the faults."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proxy = DatabaseProxy()
        # Redis needs its directory (and port) before Harness.__init__ builds the environment.
        self.workdir_early = Path(tempfile.mkdtemp(prefix="phoenix-faults-"))
        self.redis = RedisServer(self.workdir_early)
        config = Config(
            quick=settings.quick,
            trials=1,
            app_dir=REPO,
            cache_url=self.redis.url,
            database=settings.database,
            write=None,
            budget=settings.budget,
            only=(),
            skip_checks=False,
        )
        super().__init__(config)
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = self.workdir_early
        self.loadgen: subprocess.Popen[str] | None = None
        self.records = self.workdir / "requests.csv"
        self.credentials: dict[str, Credential] = {}
        self.victims: list[Victim] = []
        self.phases: list[Phase] = []
        self.throttle: dict[str, object] = {}
        self.redis_version = "?"

    def child_env(self) -> dict[str, str]:
        env = super().child_env()
        env["DATABASE_URL"] = (
            f"postgres://postgres@{LOOPBACK}:{self.proxy.port}/{self.config.database}"
        )
        return env

    # Set-up ----------------------------------------------------------------------------------

    def set_up(self) -> None:
        self.redis.start()
        self.redis_version = self.redis.version()
        self.proxy.start()
        self.reset_stores()
        self.manage("migrate", "--noinput")
        self.seed()
        self.start_servers()

    def key_plan(self) -> list[tuple[str, str]]:
        names = [(f"main-user-{n}", "user") for n in range(3)]
        names += [(f"main-system-{n}", "system") for n in range(2)]
        for n in range(self.settings.rounds):
            names += [(f"victim-stop-{n}", "user"), (f"victim-freeze-{n}", "system")]
        names += [
            ("throttle-warm", "user"),
            ("throttle-cold", "user"),
            ("throttle-bystander", "user"),
        ]
        return names

    def seed(self) -> None:
        """One shell mints every key (users for user keys); plaintexts come back on its stdout,
        read here in memory."""
        plan = self.key_plan()
        result = self.shell_json(SEED_SCRIPT, env={**self.env, "FAULTS_KEYS": json.dumps(plan)})
        for name, kind in plan:
            plaintext, key_id = result[name]
            self.credentials[name] = Credential(name, kind, plaintext, key_id)
        victims = [name for name, _ in plan if name.startswith("victim-")]
        self.victims = [
            Victim(n, self.credentials[name], f"127.0.3.{n + 1}") for n, name in enumerate(victims)
        ]

    # Load ------------------------------------------------------------------------------------

    def load_plan(self) -> dict[str, object]:
        def bearer(values: Iterable[str]) -> list[str | None]:
            return [f"Bearer {value}" for value in values]

        def main(prefix: str) -> list[str | None]:
            return bearer(c.plaintext for n, c in self.credentials.items() if n.startswith(prefix))

        unknown = [unknown_key(prefix) for prefix in ("phxu_", "phxs_") for _ in range(20)]
        mix = [
            ("user", main("main-user"), 0.42, [MAIN_SOURCE]),
            ("system", main("main-system"), 0.25, [MAIN_SOURCE]),
            ("admin", bearer([self.admin_secret]), 0.15, [MAIN_SOURCE]),
            ("unknown", bearer(unknown), 0.10, UNKNOWN_SOURCES),
            ("garbage", garbage_headers(), 0.08, [GARBAGE_SOURCE]),
        ]
        return {
            "ports": self.ports,
            "mix": [{"kind": k, "headers": h, "weight": w, "sources": s} for k, h, w, s in mix],
            "victims": [
                {
                    "kind": v.kind,
                    "headers": bearer([v.credential.plaintext]),
                    "weight": 1,
                    "sources": [v.source],
                }
                for v in self.victims
            ],
            "threads_per_host": self.settings.threads_per_host,
            "rate_per_thread": self.settings.rate_per_thread,
            "timeout": self.settings.request_timeout,
            "duration": self.settings.budget,
            "out": str(self.records),
        }

    def start_load(self) -> None:
        """The plan, credentials included, goes through stdin: never argv, never a file."""
        command = [sys.executable, str(Path(__file__).with_name("loadgen.py"))]
        self.loadgen = subprocess.Popen(  # noqa: S603 - our interpreter and our script
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.loadgen.stdin is not None and self.loadgen.stdout is not None
        self.loadgen.stdin.write(json.dumps(self.load_plan()))
        self.loadgen.stdin.close()
        if self.loadgen.stdout.readline().strip() != "ready":
            raise HarnessError("the load generator did not start")

    def stop_load(self) -> None:
        if self.loadgen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.loadgen.terminate()
        try:
            self.loadgen.wait(self.settings.request_timeout + 5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.loadgen.pid, signal.SIGKILL)
            self.loadgen.wait(5)
        self.loadgen = None

    def clean_up(self) -> None:
        """Every process we started, in any state: load, servers, our Redis, the proxy."""
        self.stop_load()
        self.stop_servers()
        self.redis.kill()
        self.proxy.stop()

    # Phases ----------------------------------------------------------------------------------

    def log_offsets(self) -> dict[Path, int]:
        return {path: path.stat().st_size for path in self.workdir.glob("gunicorn-*.log")}

    def log_lines(self, since: dict[Path, int]) -> Counter[str]:
        """The app's outage lines written since ``since`` (the logs carry no timestamps)."""
        found: Counter[str] = Counter()
        for path, offset in since.items():
            with path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
            for name, pattern in LOG_PATTERNS.items():
                found[name] += text.count(pattern)
        return found

    def run_phase(
        self,
        name: str,
        number: int,
        fault: Callable[[], None],
        heal: Callable[[], None],
        victim: Victim | None = None,
    ) -> Phase:
        """pre-fault load, the fault (with a revoke 2.5 s in), healing, then watch recovery."""
        s = self.settings
        phase = Phase(name, number, time.monotonic())
        offsets = self.log_offsets()
        time.sleep(s.pre)
        phase.fault_start = time.monotonic()
        fault()
        if name != "redis-restart":
            time.sleep(2.5)
            if victim is not None:
                phase.revoke = self.revoke(victim)
            time.sleep(max(0.0, phase.fault_start + s.fault - time.monotonic()))
        heal()
        phase.fault_end = time.monotonic()
        if phase.revoke is not None and phase.revoke.status == 503:
            # Refused, not reported done, while the key cache could not be told: the key stays
            # valid until the retry after the cache is back, as an operator would retry.
            phase.refused, phase.revoke = phase.revoke, None
            time.sleep(1.0)
            phase.revoke = self.revoke(victim)  # type: ignore[arg-type]
        time.sleep(s.post)
        phase.end = time.monotonic()
        phase.logs = self.log_lines(offsets)
        self.phases.append(phase)
        say(f"[{self.elapsed():6.1f}s] {phase.label}: done")
        return phase

    def revoke(self, victim: Victim) -> Revoke:
        """REST DELETE on host A with the admin secret; "returned" is when the 204 was read."""
        path = f"/v1/{victim.credential.kind}/api_keys/{victim.credential.id}"
        start = time.monotonic()
        status, _, _ = probe(self.ports["A"], path, self.admin_secret, MAIN_SOURCE, "DELETE")
        return Revoke(victim, start, time.monotonic(), status)

    def round_of_faults(self, number: int) -> None:
        r, proxy = self.redis, self.proxy
        stop_victim, freeze_victim = self.victims[2 * number], self.victims[2 * number + 1]
        self.run_phase("redis-stop", number, r.shutdown, r.start, stop_victim)
        self.run_phase("redis-freeze", number, r.freeze, r.thaw, freeze_victim)
        self.run_phase("redis-restart", number, self.restart_redis, noop)
        self.run_phase("pg-down", number, proxy.down, proxy.up)

    def restart_redis(self) -> None:
        self.redis.shutdown()
        self.redis.start()

    def baseline(self) -> None:
        phase = Phase("baseline", -1, time.monotonic())
        offsets = self.log_offsets()
        time.sleep(self.settings.pre + 2)
        phase.fault_start = phase.fault_end = phase.end = time.monotonic()
        phase.logs = self.log_lines(offsets)
        self.phases.append(phase)

    # The throttle ----------------------------------------------------------------------------

    def throttle_phase(self) -> None:
        """Trip the throttle from one address, then see which valid keys it still lets in."""
        phase = Phase("throttle", -1, time.monotonic())
        offsets = self.log_offsets()
        phase.fault_start = time.monotonic()
        self.throttle = throttle_scenario(self)
        phase.fault_end = time.monotonic()
        time.sleep(2)
        phase.end = time.monotonic()
        phase.logs = self.log_lines(offsets)
        self.phases.append(phase)
        say(f"[{self.elapsed():6.1f}s] throttle: done")


def noop() -> None:
    """Healing for a fault that heals itself (a restart)."""


def probe(
    port: int, path: str, credential: str | None, source: str, method: str = "GET"
) -> tuple[int, str, float]:
    """One request from ``source``: status (0 on a transport error), Retry-After, seconds."""
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    bind = None if source == MAIN_SOURCE else (source, 0)
    start = time.monotonic()
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10, source_address=bind)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After") or "", time.monotonic() - start
    except (OSError, http.client.HTTPException):
        return 0, "", time.monotonic() - start
    finally:
        connection.close()


def throttle_scenario(h: FaultHarness) -> dict[str, object]:
    """Measured from THROTTLE_SOURCE while the load goes on from its own addresses."""
    warm, cold = h.credentials["throttle-warm"], h.credentials["throttle-cold"]
    ports = [h.ports[host] for host in HOSTS]

    def ask(credential: str | None, source: str, count: int) -> list[tuple[int, str, float]]:
        return [probe(ports[i % 2], "/api/hello/", credential, source) for i in range(count)]

    def statuses(credential: str | None, source: str, count: int) -> Counter[int]:
        return Counter(status for status, _, _ in ask(credential, source, count))

    result: dict[str, object] = {"warm before": statuses(warm.plaintext, THROTTLE_SOURCE, 4)}
    start, burst = time.monotonic(), list[tuple[int, str, float]]()
    while len(burst) < 3 * FAILED_AUTH_LIMIT:
        burst.append(
            probe(ports[len(burst) % 2], "/api/hello/", unknown_key("phxu_"), THROTTLE_SOURCE)
        )
        if burst[-1][0] == 429:
            break
    first = next((i for i, (status, _, _) in enumerate(burst) if status == 429), None)
    # Each process adds its tally to the shared count at most FLUSH_INTERVAL (0.1 s) after its
    # last addition: past that, every process knows the address is over the limit.
    time.sleep(0.3)
    after = ask(unknown_key("phxs_"), THROTTLE_SOURCE, 10)
    refused = burst[: first if first is not None else len(burst)]
    result.update(
        {
            "refused before 429": Counter(s for s, _, _ in refused),
            "first 429 at": None if first is None else first + 1,
            "seconds to first 429": None if first is None else sum(t for _, _, t in burst),
            "burst wall": time.monotonic() - start,
            "401 latency ms": ms_median([t for s, _, t in burst if s == 401]),
            "429 latency ms": ms_median([t for s, _, t in [*burst, *after] if s == 429]),
            "unknown after": Counter(s for s, _, _ in after),
            "retry after": sorted({ra for s, ra, _ in [*burst, *after] if s == 429}),
            "warm key, throttled address": statuses(warm.plaintext, THROTTLE_SOURCE, 6),
            "admin secret, throttled address": statuses(h.admin_secret, THROTTLE_SOURCE, 4),
            "cold key, throttled address": statuses(cold.plaintext, THROTTLE_SOURCE, 4),
            "cold key, other address": statuses(cold.plaintext, MAIN_SOURCE, 4),
            "cold key, throttled address, once cached": statuses(
                cold.plaintext, THROTTLE_SOURCE, 4
            ),
        }
    )
    bystander = h.credentials["throttle-bystander"]
    status, _, _ = probe(
        h.ports["A"], f"/v1/user/api_keys/{bystander.id}", h.admin_secret, MAIN_SOURCE, "DELETE"
    )
    result["unrelated revoke"] = status
    result["warm key, throttled address, after an unrelated revoke"] = Counter(
        s for s, _, _ in ask(warm.plaintext, THROTTLE_SOURCE, 4)
    )
    result["warm key, other address, after an unrelated revoke"] = Counter(
        s for s, _, _ in ask(warm.plaintext, MAIN_SOURCE, 4)
    )
    return result


def ms_median(seconds: list[float]) -> float | None:
    return statistics.median(seconds) * 1000 if seconds else None


# Analysis ------------------------------------------------------------------------------------


def category(status: int) -> str:
    if status == 0:
        return "error"
    if 500 <= status < 600 and status != 503:
        return "5xx other"
    return str(status) if status in (200, 401, 403, 429, 503) else "other"


CATEGORIES = ("200", "401", "403", "429", "503", "5xx other", "error", "other")


@dataclass
class Windows:
    """When 503s are legitimate (the database cut off) and when 2 s is the stall limit."""

    db: list[tuple[float, float]]
    faults: list[tuple[float, float]]

    @classmethod
    def of(cls, phases: list[Phase]) -> Windows:
        db = [
            (p.fault_start - DB_GRACE, p.fault_end + DB_GRACE)
            for p in phases
            if p.name == "pg-down"
        ]
        faults = [(p.fault_start - 0.5, p.fault_end + 1.0) for p in phases if p.is_fault]
        return cls(db, faults)

    @staticmethod
    def inside(t: float, spans: list[tuple[float, float]]) -> bool:
        return any(a <= t <= b for a, b in spans)


def row_problem(
    row: Row, windows: Windows, revoked_at: dict[str, tuple[float, float]]
) -> str | None:
    """Why this one request breaks a promise, or None. A request sent while its key's revoke
    was in flight may be answered either way."""
    status, kind = row.status, row.kind
    if status == 0:
        return "transport error or timeout"
    if 500 <= status < 600 and status != 503:
        return f"{status} from the server"
    if status == 503 and not windows.inside(row.sent, windows.db):
        return "503 while the database was reachable"
    if status in (429, 503) and not row.retry_after.isdigit():
        return f"{status} without a Retry-After"
    limit = STALL_IN_FAULT if windows.inside(row.sent, windows.faults) else STALL_ANYWHERE
    if row.latency > limit:
        return f"request took over {limit:.0f} s"
    revoke_start, revoke_end = revoked_at.get(kind, (float("inf"), float("inf")))
    if row.sent >= revoke_end:
        return "a revoked key accepted after its revoke returned" if status == 200 else None
    if row.sent >= revoke_start and status in (200, 401):
        return None
    if (kind in VALID or kind.startswith("victim-")) and status in (401, 403, 429):
        return f"a valid credential refused ({status})"
    if kind in ("unknown", "garbage") and status == 200:
        return f"{kind} credential accepted"
    return None


@dataclass
class PhaseStats:
    phase: Phase
    rows: list[Row]
    statuses: Counter[str]
    fault_by_kind: dict[str, Counter[str]]
    latency: tuple[float, float, float] | None  # valid kinds, whole phase: p50, p99, max (ms)
    fault_latency: tuple[float, float, float] | None
    db_ratio: tuple[float, float, float]  # round trips per request: before, during, after
    recovery: float | None  # seconds after the fault ended; None: not seen
    p50_back: float | None
    victim_after: int = 0
    victim_after_heal: int = 0
    victim_leaks: int = 0
    problems: list[str] = field(default_factory=list)


def between(rows: list[Row], times: list[float], a: float, b: float) -> list[Row]:
    return rows[bisect_left(times, a) : bisect_left(times, b)]


def latency_figures(rows: Iterable[Row]) -> tuple[float, float, float] | None:
    values = sorted(row.latency * 1000 for row in rows if row.kind in VALID)
    if len(values) < 2:
        return None
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return statistics.median(values), p99, values[-1]


class RoundTrips:
    """Database round trips (chunks the proxy forwarded to PostgreSQL) per request sent."""

    def __init__(self, trips: list[float], rows: list[Row], times: list[float]) -> None:
        self.trips = sorted(trips)
        self.rows, self.times = rows, times

    def ratio(self, a: float, b: float) -> float | None:
        requests = bisect_left(self.times, b) - bisect_left(self.times, a)
        trips = bisect_left(self.trips, b) - bisect_left(self.trips, a)
        return trips / requests if requests else None


def cache_recovery(phase: Phase, trips: RoundTrips) -> float | None:
    """Seconds after the fault until the database load falls back: the cache answers again.
    Recovered is a 0.5 s bin below a quarter of the way from the level before the fault to the
    peak during it; a fault with no visible peak (the cache was back at once) counts as 0."""
    before = trips.ratio(phase.start, phase.fault_start) or 0.0
    bins = [(t, t + 0.5) for t in frange(phase.fault_start, phase.fault_end + 2.0, 0.5)]
    peak = max((r for a, b in bins if (r := trips.ratio(a, b)) is not None), default=0.0)
    if peak - before < 0.1:
        return 0.0
    threshold = before + 0.25 * (peak - before)
    for a, b in ((t, t + 0.5) for t in frange(phase.fault_end, phase.end - 0.5, 0.5)):
        ratio = trips.ratio(a, b)
        if ratio is not None and ratio <= threshold:
            return b - phase.fault_end
    return None


def database_recovery(phase: Phase, rows: list[Row]) -> float | None:
    """Seconds after the database came back until an unknown key got a true answer (a lookup
    answered: 401) rather than 503."""
    for row in rows:
        if row.sent >= phase.fault_end and row.kind == "unknown" and row.status in (401, 429):
            return row.sent - phase.fault_end
    return None


def p50_back(phase: Phase, rows: list[Row], times: list[float]) -> float | None:
    """Seconds after the fault until a 1 s bin's median latency (valid kinds) is back within
    1.5 times (or 3 ms of) the median before the fault."""
    before = latency_figures(between(rows, times, phase.start, phase.fault_start))
    if before is None:
        return None
    limit = max(before[0] * 1.5, before[0] + 3.0)
    for a in frange(phase.fault_end, phase.end - 1.0, 0.5):
        figures = latency_figures(between(rows, times, a, a + 1.0))
        if figures is not None and figures[0] <= limit:
            return a + 1.0 - phase.fault_end
    return None


def frange(a: float, b: float, step: float) -> Iterable[float]:
    t = a
    while t < b:
        yield t
        t += step


def phase_stats(
    phase: Phase, rows: list[Row], times: list[float], trips: RoundTrips, windows: Windows
) -> PhaseStats:
    mine = between(rows, times, phase.start, phase.end)
    during = between(rows, times, phase.fault_start, phase.fault_end)
    by_kind: dict[str, Counter[str]] = {}
    for row in during:
        kind = "victim" if row.kind.startswith("victim-") else row.kind
        by_kind.setdefault(kind, Counter())[category(row.status)] += 1
    ratios = (
        trips.ratio(phase.start, phase.fault_start),
        trips.ratio(phase.fault_start, phase.fault_end),
        trips.ratio(phase.fault_end, phase.end),
    )
    recovery: float | None = None
    if phase.name == "pg-down":
        recovery = database_recovery(phase, mine)
    elif phase.name.startswith("redis-"):
        recovery = cache_recovery(phase, trips)
    stats = PhaseStats(
        phase,
        mine,
        Counter(category(row.status) for row in mine),
        by_kind,
        latency_figures(mine),
        latency_figures(between(rows, times, phase.fault_start - 0.5, phase.fault_end + 1.0)),
        (ratios[0] or 0.0, ratios[1] or 0.0, ratios[2] or 0.0),
        recovery,
        p50_back(phase, rows, times) if phase.is_fault else None,
    )
    check_phase(stats, rows, times)
    return stats


def check_phase(stats: PhaseStats, rows: list[Row], times: list[float]) -> None:
    """The phase-level promises: recovery in time, the revoke held, the outage logged once."""
    phase, problems = stats.phase, stats.problems
    if phase.is_fault and (stats.recovery is None or stats.recovery > RECOVERY_LIMIT):
        seen = "not seen" if stats.recovery is None else f"{stats.recovery:.1f} s"
        problems.append(f"no recovery within {RECOVERY_LIMIT:.0f} s of the fault's end ({seen})")
    if phase.revoke is not None:
        check_revoke(stats, phase.revoke, rows, times)
    expected = {
        "redis-stop": ("cache failed", "cache answers"),
        "redis-freeze": ("cache failed", "cache answers"),
        "pg-down": ("db failed", "db answers"),
    }.get(phase.name, ())
    for name in expected:
        if not 1 <= phase.logs[name] <= FLOOD:
            problems.append(f'{phase.logs[name]} "{LOG_PATTERNS[name]}" lines (1-{FLOOD})')
    if phase.name == "redis-restart" and phase.logs["cache failed"] > FLOOD:
        problems.append(f"{phase.logs['cache failed']} cache failure lines for one restart")


def check_revoke(stats: PhaseStats, revoke: Revoke, rows: list[Row], times: list[float]) -> None:
    phase, kind = stats.phase, revoke.victim.kind
    if revoke.status != 204:
        stats.problems.append(f"the revoke answered {revoke.status}, not 204")
    refused = phase.refused
    if phase.name in ("redis-stop", "redis-freeze") and refused is None:
        stats.problems.append("a revoke during the cache outage was not refused (503)")
    if refused is not None:
        during = between(rows, times, refused.end, revoke.start)
        if any(row.kind == kind and row.status in (401, 403) for row in during):
            stats.problems.append("a refused revoke still took the key away")
    warm = {
        row.host
        for row in between(rows, times, phase.start, phase.fault_start)
        if row.kind == kind and row.status == 200
    }
    if warm != set(HOSTS):
        stats.problems.append(f"the victim key was not warm on both hosts (only {sorted(warm)})")
    after = [row for row in rows[bisect_left(times, revoke.end) :] if row.kind == kind]
    stats.victim_after = len(after)
    stats.victim_after_heal = sum(row.sent >= phase.fault_end for row in after)
    stats.victim_leaks = sum(row.status == 200 for row in after)
    if not stats.victim_after_heal or not any(r.host == "B" for r in after):
        stats.problems.append("the revoked key was not tried on host B after the outage")


@dataclass
class Outcome:
    stats: list[PhaseStats]
    problems: Counter[str]
    throttle: dict[str, object]
    throttle_problems: list[str]
    tracebacks: int
    total: int
    wall: float
    setup: float
    versions: dict[str, str]

    @property
    def failures(self) -> list[str]:
        lines = [f"{reason}: {n} request(s)" for reason, n in sorted(self.problems.items())]
        lines += [f"{s.phase.label}: {p}" for s in self.stats for p in s.problems]
        lines += [f"throttle: {p}" for p in self.throttle_problems]
        if self.tracebacks:
            lines.append(f"{self.tracebacks} traceback(s) in the gunicorn logs")
        return lines


def analyse(h: FaultHarness, setup: float) -> Outcome:
    rows = read_rows(h.records)
    times = [row.sent for row in rows]
    trips = RoundTrips(list(h.proxy.round_trips), rows, times)
    windows = Windows.of(h.phases)
    revoked_at = {
        p.revoke.victim.kind: (p.revoke.start, p.revoke.end) for p in h.phases if p.revoke
    }
    problems: Counter[str] = Counter()
    label_of = phase_labeller(h.phases)
    for row in rows:
        problem = row_problem(row, windows, revoked_at)
        if problem:
            problems[f"{label_of(row.sent)}, {row.kind}: {problem}"] += 1
    stats = [phase_stats(p, rows, times, trips, windows) for p in h.phases]
    return Outcome(
        stats,
        problems,
        h.throttle,
        throttle_problems(h.throttle),
        h.log_tracebacks(),
        len(rows),
        h.elapsed(),
        setup,
        versions(h),
    )


def phase_labeller(phases: list[Phase]) -> Callable[[float], str]:
    def label(t: float) -> str:
        return next((p.label for p in phases if p.start <= t < p.end), "between phases")

    return label


def throttle_problems(result: dict[str, object]) -> list[str]:
    """Fails on what the throttle promises; what it does to uncached valid keys is reported."""
    problems = []
    first = result.get("first 429 at")
    # The documented bound: each process tallies failures and adds them to the shared count in
    # batches, so an address gets past the limit by at most what the processes take from it in
    # 0.1 s, never more than WORKERS * FAILED_AUTH_LIMIT / 2.
    most = FAILED_AUTH_LIMIT + WORKERS * FAILED_AUTH_LIMIT // 2 + 1
    if not isinstance(first, int) or first > most:
        problems.append(f"no 429 within {most} failures (first at {first})")
    retry = result.get("retry after")
    if not retry or not all(str(value).isdigit() for value in retry):  # type: ignore[attr-defined]
        problems.append(f"429 without a numeric Retry-After ({retry})")
    for name in (
        "warm before",
        "warm key, throttled address",
        "admin secret, throttled address",
        "cold key, other address",
        # A revocation retires that key's cache entries alone: a warm key stays warm.
        "warm key, throttled address, after an unrelated revoke",
        "warm key, other address, after an unrelated revoke",
    ):
        seen = result.get(name)
        if not isinstance(seen, Counter) or set(seen) != {200}:
            problems.append(f"{name}: {format_counter(seen)}, expected only 200")
    unknown = result.get("unknown after")
    if not isinstance(unknown, Counter) or set(unknown) != {429}:
        problems.append(f"unknown keys after the limit: {format_counter(unknown)}, expected 429")
    return problems  # fmt: skip


def format_counter(counter: object) -> str:
    if not isinstance(counter, Counter):
        return str(counter)
    names = {0: "error"}
    return ", ".join(f"{names.get(k, k)}: {n}" for k, n in sorted(counter.items(), key=str))


def versions(h: FaultHarness) -> dict[str, str]:
    with psycopg.connect(PG_ADMIN_URL, connect_timeout=10) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return {
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "Django REST framework": importlib.metadata.version("djangorestframework"),
        "gunicorn": importlib.metadata.version("gunicorn"),
        "django-redis": importlib.metadata.version("django-redis"),
        "redis-py": importlib.metadata.version("redis"),
        "psycopg": importlib.metadata.version("psycopg"),
        "PostgreSQL": str(row[0]).split()[0] if row else "?",
        "Redis (ours)": h.redis_version,
        "phoenix_apikeys code": code_version(REPO),
    }


# Reporting -----------------------------------------------------------------------------------


def ms(figures: tuple[float, float, float] | None) -> list[str]:
    return [f"{v:.0f}" for v in figures] if figures else ["-", "-", "-"]


def seconds(value: float | None) -> str:
    return "not seen" if value is None else f"{value:.1f}"


PHASE_HEADERS = [
    "phase", "requests", *CATEGORIES[:-1],
    "p50 ms", "p99 ms", "max ms", "fault p50", "fault p99", "fault max",
]  # fmt: skip


def phase_rows(outcome: Outcome) -> list[list[str]]:
    return [
        [
            s.phase.label,
            str(len(s.rows)),
            *(str(s.statuses[c]) for c in CATEGORIES[:-1]),
            *ms(s.latency),
            *(ms(s.fault_latency) if s.phase.is_fault else ["-", "-", "-"]),
        ]
        for s in outcome.stats
    ]


FAULT_HEADERS = [
    "phase", "DB trips/request before, during, after", "recovered (s)", "p50 back (s)",
    "revoked key: tries after revoke (after heal), 200s", "log lines: failed / answers again",
    "result",
]  # fmt: skip


def fault_rows(outcome: Outcome) -> list[list[str]]:
    rows = []
    for s in outcome.stats:
        p = s.phase
        if not p.is_fault:
            continue
        logs = (
            ("db failed", "db answers")
            if p.name == "pg-down"
            else ("cache failed", "cache answers")
        )
        revoked = f"{s.victim_after} ({s.victim_after_heal}), {s.victim_leaks}" if p.revoke else "-"
        rows.append(
            [
                p.label,
                ", ".join(f"{r:.2f}" for r in s.db_ratio),
                seconds(s.recovery),
                seconds(s.p50_back),
                revoked,
                f"{p.logs[logs[0]]} / {p.logs[logs[1]]}",
                "FAIL" if s.problems else "ok",
            ]
        )
    return rows


def kind_rows(outcome: Outcome) -> tuple[list[str], list[list[str]]]:
    """Statuses by credential kind during the fault windows, all rounds of a fault together."""
    names = [name for name in FAULTS if any(s.phase.name == name for s in outcome.stats)]
    kinds = ["user", "system", "admin", "victim", "unknown", "garbage"]
    table: dict[tuple[str, str], Counter[str]] = {}
    for s in outcome.stats:
        for kind, counter in s.fault_by_kind.items():
            table.setdefault((kind, s.phase.name), Counter()).update(counter)
    rows = [
        [kind, *(format_counter(table.get((kind, name), Counter())) or "-" for name in names)]
        for kind in kinds
    ]
    return ["kind", *names], rows


def throttle_lines(result: dict[str, object]) -> list[str]:
    def show(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.2f}"
        return format_counter(value) if isinstance(value, Counter) else str(value)

    return [f"{name}: {show(value)}" for name, value in result.items()]


def median_of(outcome: Outcome, name: str, attribute: str) -> str:
    values = [
        v
        for s in outcome.stats
        if s.phase.name == name and (v := getattr(s, attribute)) is not None
    ]
    return f"{statistics.median(values):.1f} s" if values else "not seen"


def summary(outcome: Outcome) -> str:
    """The few sentences a reader wants, each figure taken from this run."""
    by_name: dict[str, list[PhaseStats]] = {}
    for s in outcome.stats:
        by_name.setdefault(s.phase.name, []).append(s)

    def total(name: str, kind: str, cat: str) -> int:
        return sum(s.fault_by_kind.get(kind, Counter())[cat] for s in by_name.get(name, []))

    def valid(name: str) -> str:
        n = sum(
            sum(s.fault_by_kind.get(k, Counter()).values())
            for s in by_name.get(name, [])
            for k in VALID
        )
        ok = sum(total(name, k, "200") for k in VALID)
        return f"{ok} of {n}"

    def worst(name: str) -> str:
        values = [s.fault_latency[2] for s in by_name.get(name, []) if s.fault_latency]
        return f"{max(values):.0f} ms" if values else "-"

    def trips(name: str, index: int) -> str:
        values = [s.db_ratio[index] for s in by_name.get(name, [])]
        return f"{statistics.median(values):.2f}" if values else "-"

    leaks = sum(s.victim_leaks for s in outcome.stats)
    tries = sum(s.victim_after for s in outcome.stats)
    baseline = by_name.get("baseline", [None])[0]
    base = ms(baseline.latency)[0] if baseline else "-"
    return f"""- **Redis stopped, frozen or restarted**: valid credentials kept working
  ({valid("redis-stop")}, {valid("redis-freeze")} and {valid("redis-restart")} requests
  answered 200 during the stops, freezes and restarts): the keys were verified in PostgreSQL
  instead (database round trips per request: {trips("redis-stop", 0)} before a stop,
  {trips("redis-stop", 1)} during it). No request waited on the frozen Redis: the slowest
  valid request during a freeze took {worst("redis-freeze")} (baseline p50 {base} ms), bounded
  by the 0.05 s socket timeouts and the breaker. The cache served again a median of
  {median_of(outcome, "redis-stop", "recovery")} after a stop ended,
  {median_of(outcome, "redis-freeze", "recovery")} after a freeze and
  {median_of(outcome, "redis-restart", "recovery")} after a restart (the breaker retries
  after CACHE_RETRY_INTERVAL = {CACHE_RETRY_INTERVAL} s).
- **Revocation and cache outages**: a revoke made while Redis was stopped or frozen was
  refused (`503`, nothing revoked, the key kept working), since the cache could not be told;
  retried once Redis was back (with its old entries, in the freeze case) it returned `204`, and
  of {tries} requests with those keys sent after it, on both hosts, {leaks} were accepted.
- **PostgreSQL cut off**: keys already in the cache kept working ({valid("pg-down")} valid
  requests answered 200); unknown keys, which need a lookup, got `503` with `Retry-After`
  ({total("pg-down", "unknown", "503")} of them; {total("pg-down", "unknown", "401")} got a
  401 and {total("pg-down", "unknown", "200")} a 200 the app could not know); garbage was
  still refused (401, or 429 from its throttled address). Lookups answered again a median of
  {median_of(outcome, "pg-down", "recovery")} after the database returned.
- **No 500, no transport error, no stall** in {outcome.total} requests, unless listed under
  Failures below."""


def markdown(settings: Settings, outcome: Outcome, argv: list[str]) -> str:
    versions_text = "\n".join(f"  - {name}: {value}" for name, value in outcome.versions.items())
    failures_text = "\n".join(f"- {f}" for f in outcome.failures) or "None."
    phases_text = "\n".join(f"- `{name}`: {text}" for name, text in PHASE_TEXT.items())
    kind_headers, kind_table = kind_rows(outcome)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verdict = (
        "**Failed**: see Failures."
        if outcome.failures
        else (
            "**Passed**: no 500, no transport error, no stall, no valid credential refused, no "
            "unknown or revoked key accepted, and every fault recovered within "
            f"{RECOVERY_LIMIT:.0f} s."
        )
    )
    throttle_text = "\n".join(f"- {line}" for line in throttle_lines(outcome.throttle))
    return f"""## Faults: Redis and PostgreSQL failing under load

Does the app stay up, and tell the truth, when its cache or its database fails?
`stress/faults.py` breaks each of them under load, on two hosts (see `stress/README.md`).

{verdict}

### What the app does when Redis or PostgreSQL fails

{summary(outcome)}

### How it was run

- Command: `{" ".join(["python stress/faults.py", *argv])}`
- Date: {date}; wall time {outcome.wall:.0f} s, of which set-up {outcome.setup:.0f} s;
  {settings.rounds} round(s) of the four faults, each phase {settings.pre:.0f} s of load, the
  fault ({settings.fault:.0f} s for a stop, a freeze or a cut-off), then
  {settings.post:.0f} s watched
- Versions:
{versions_text}
- Topology: one machine ({os.cpu_count()} CPUs). Two gunicorn masters on 127.0.0.1, *host A* and
  *host B*, 2 sync workers each, serving the example project (`DJANGO_DEBUG=false`, Redis
  socket timeouts 0.05 s, `CONN_MAX_AGE=60` with health checks, the app's defaults:
  `CACHE_RETRY_INTERVAL=5`, `FAILED_AUTH_LIMIT=30` per 60 s). The key cache is a `redis-server`
  of the harness's own on a free port (`--save "" --appendonly no`), so stopping it touches no
  one else's. PostgreSQL is the machine's shared cluster, which must not be stopped: the
  example reaches its database (`{settings.database}`, created fresh) through a TCP proxy in the
  harness (asyncio, 127.0.0.1:<port> → 5432). "PostgreSQL down" is that proxy closing its
  listening socket (new connections are refused) and dropping every forwarded connection (open
  ones break), for the example alone; the proxy also counts the chunks it forwards to
  PostgreSQL, which is how "database round trips per request" is measured from outside.
- Load: `stress/loadgen.py`, its own process, {settings.threads_per_host} threads per host
  paced at {settings.rate_per_thread:.0f} requests/s each, `GET /api/hello/` and `GET /v1/user`
  alternately, a new connection per request; the mix: 42 % three user keys, 25 % two system
  keys, 15 % the admin secret (all from 127.0.0.1), 10 % unknown well-formed keys
  (`generate_key`'s format, never issued), 8 % garbage (no credential, `Bearer` alone, two
  credentials, a short or mis-checksummed key, a non-key, 5,000 characters, other schemes);
  plus one thread per host cycling the keys to be revoked. Every request is recorded (send
  time, host, kind, status, latency, Retry-After); send times are CLOCK_MONOTONIC, shared with
  the harness, so "sent after the revoke returned" is exact.
- Client addresses: the throttle counts failures per client address, so each kind of traffic
  has its own: Linux routes all of 127.0.0.0/8 to loopback, and a client socket bound to, say,
  127.0.1.7 reaches the server on 127.0.0.1 with `REMOTE_ADDR=127.0.1.7`. Valid credentials
  come from 127.0.0.1 (which never fails, so is never throttled), unknown keys from 200
  rotating addresses (each stays under the limit, so they show the database path: 401, or 503
  while it is cut off), garbage from 127.0.0.2 (throttled: its 429s are expected), each
  revoked key from an address of its own.

Phases:

{phases_text}

A request fails the run if it is a 5xx other than 503, a 503 sent outside a database cut-off
(from {DB_GRACE:.0f} s before to {DB_GRACE:.0f} s after), a 429 or 503 without `Retry-After`,
a transport error or timeout, a valid credential refused (401, 403, 429), an unknown key or
garbage accepted, a revoked key accepted after its revoke returned, or slower than
{STALL_IN_FAULT:.0f} s during a fault (from 0.5 s before it to 1 s after) or
{STALL_ANYWHERE:.0f} s elsewhere. A phase fails if it does not recover within
{RECOVERY_LIMIT:.0f} s of the fault's end ("recovered": for Redis, the first 0.5 s bin whose
database round trips per request fall back a quarter of the way from the outage's peak to the level
before it, i.e. the cache serves again; for PostgreSQL, the first unknown key answered 401
again), if a revoke did not answer 204 or its key was not warm on both hosts, or if the outage
was logged not at all or more than {FLOOD // WORKERS} times per worker process ({WORKERS}
processes; one is expected, a breaker flap on a loaded machine adds one). A traceback in
the gunicorn logs fails the run.

### Per phase

Statuses of all requests sent in the phase; latencies of valid credentials (ms), over the
phase and over the fault window.

{markdown_table(PHASE_HEADERS, phase_rows(outcome))}

{markdown_table(FAULT_HEADERS, fault_rows(outcome))}

"p50 back": the first 1 s bin after the fault whose median latency is within 1.5 times (or
3 ms of) the median before it. Log lines are the app's: `{LOG_PATTERNS["cache failed"]}...`
and `...answers again` for Redis, `{LOG_PATTERNS["db failed"]}...` and
`{LOG_PATTERNS["db answers"]}...` for PostgreSQL, counted in both masters' logs over the phase.

Statuses by credential kind during the faults (all rounds):

{markdown_table(kind_headers, kind_table)}

### The throttle

From one client address ({THROTTLE_SOURCE}) while the load went on from the others: a warm user key
(cached), unknown keys until the first 429, then valid keys again; a "cold" key is a valid
key never used before (not in the cache).

{throttle_text}

The throttle is checked before a database lookup, after the cache: a cached key from a
throttled address still answers 200, an uncached one gets 429 until the window ends (60 s from
the address's first failure), and any revocation (it renews the cache generation, so every
entry becomes a miss) turns every key of that address into an uncached one.

### Failures

{failures_text}

Tracebacks in the gunicorn logs: {outcome.tracebacks}.
"""


def report(settings: Settings, outcome: Outcome, argv: list[str]) -> None:
    say("\n" + text_table(PHASE_HEADERS, phase_rows(outcome)))
    say("\n" + text_table(FAULT_HEADERS, fault_rows(outcome)))
    say("\n" + text_table(*kind_rows(outcome)))
    say("\nthrottle:\n  " + "\n  ".join(throttle_lines(outcome.throttle)))
    say(f"\nversions: {outcome.versions}")
    say(f"requests {outcome.total}; wall time {outcome.wall:.1f} s (set-up {outcome.setup:.1f} s)")
    for failure in outcome.failures:
        say(f"FAILURE: {failure}")
    say("FAILED" if outcome.failures else "PASSED")
    if settings.write:
        put_section(settings.write, "faults", redact(markdown(settings, outcome, argv)))
        say(f"wrote the faults part of {settings.write}")


# Entry point ---------------------------------------------------------------------------------


def execute(h: FaultHarness) -> Outcome:
    say(f"logs in {h.workdir}; our Redis on :{h.redis.port}, the proxy on :{h.proxy.port}")
    h.set_up()
    h.start_load()
    setup = h.elapsed()
    say(f"[{setup:6.1f}s] set up: hosts A on :{h.ports['A']}, B on :{h.ports['B']}; load running")
    h.baseline()
    for number in range(h.settings.rounds):
        h.round_of_faults(number)
    h.throttle_phase()
    h.stop_load()
    dump_phases(h)
    return analyse(h, setup)


def dump_phases(h: FaultHarness) -> None:
    """Phase times next to requests.csv, so a kept run can be analysed again by hand."""
    phases = [
        {"label": p.label, "start": p.start, "fault_start": p.fault_start,
         "fault_end": p.fault_end, "end": p.end, "logs": dict(p.logs),
         "revoke": None if p.revoke is None else [p.revoke.victim.kind, p.revoke.start,
                                                  p.revoke.end, p.revoke.status]}
        for p in h.phases
    ]  # fmt: skip
    (h.workdir / "phases.json").write_text(json.dumps(phases, indent=1))


def main(argv: list[str]) -> int:
    settings = parse_args(argv)
    harness: FaultHarness | None = None
    keep_logs = True
    try:
        with deadline(settings.budget):
            harness = FaultHarness(settings)
            outcome = execute(harness)
            harness.clean_up()
            report(settings, outcome, argv)
            keep_logs = bool(outcome.failures)
            return 1 if outcome.failures else 0
    except (HarnessError, psycopg.Error, redis.RedisError, subprocess.SubprocessError) as error:
        say(f"HARNESS ERROR: {type(error).__name__}: {error}")
        return 2
    except Deadline as error:
        say(f"ABORTED: {error}")
        return 3
    except KeyboardInterrupt:
        say("INTERRUPTED")
        return 130
    finally:
        if harness is not None:
            harness.clean_up()
            if keep_logs:
                say(f"logs kept in {harness.workdir}")
            else:
                shutil.rmtree(harness.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
