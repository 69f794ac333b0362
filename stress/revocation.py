"""Revocation under load: is a revoked key refused by every serving process once the revoke returns?

Two gunicorn masters ("host A" and "host B", two sync workers each) serve the example project
from one PostgreSQL database and one key cache. For each revocation surface (REST, the Django
admin, the management commands, a Django shell) and each trial, a fresh key is warmed on both
hosts, load threads keep calling two protected views with it on both hosts, the key is revoked,
and the load goes on for a while after the revoke returned. Every request is recorded with the
monotonic time its send started, in this process, so "sent after the revoke returned" is exact:
any 200 among those requests is a failure, as is any 5xx or transport error. A last part sends
100 concurrent DELETEs of one key and expects exactly one 204.

    python stress/revocation.py [--quick] [--trials N] [--write docs/reliability.md]
        [--app-dir PATH] [--cache-url URL]

It needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password; it drops and re-creates its
own database) and, with the default cache, Redis on 127.0.0.1:6379 (it flushes db 9). Traffic
goes to 127.0.0.1 only; every request has a timeout and the whole run a deadline. Plaintext keys,
secrets and the admin password live in memory and in child processes' stdin or environment only,
never in a log line, the output or the report (and every printed line is redacted anyway).
"""

from __future__ import annotations

import argparse
import base64
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
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import FrameType
from typing import Any

import django
import psycopg
import redis
import requests
from common import kept_sections
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_CACHE_URL = "redis://127.0.0.1:6379/9"
PATHS = ("/api/hello/", "/v1/user")
HOSTS = ("A", "B")
USER_ADMIN = "auth/user"  # the example project's AUTH_USER_MODEL, as admin URLs spell it
KEY_PATTERN = re.compile(r"(?:phxs_|phxu_)[0-9A-Za-z]{38}")
JSON_MARKER = "STRESS-JSON "
STATUS_ERROR = 0  # a timeout or a connection error, recorded as status 0


class HarnessError(Exception):
    """The harness could not do what it needed (set up, mint, warm, revoke): a failed run."""


class Deadline(BaseException):
    """The run's time budget is spent; a BaseException so no per-trial handler swallows it."""


# Configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    quick: bool
    trials: int
    app_dir: Path
    cache_url: str
    database: str
    write: Path | None
    budget: int
    only: tuple[str, ...]
    skip_checks: bool
    load_threads: int = 4
    preload: float = 0.3  # seconds of load before the revoke starts
    tail: float = 1.0  # seconds of load after the revoke returned
    warm_requests: int = 8  # per host, each a 200, before the load starts
    request_timeout: float = 5.0
    command_timeout: float = 60.0
    concurrent_runs: int = 3
    concurrent_deletes: int = 100

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:5432/{self.database}"


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 trials per surface (CI)")
    parser.add_argument("--trials", type=int, help="trials per surface (default 3 quick, 10)")
    parser.add_argument("--write", type=Path, help="write a Markdown report to this path")
    parser.add_argument(
        "--app-dir", type=Path, default=REPO, help="checkout whose example_project is served"
    )
    parser.add_argument(
        "--cache-url", default=DEFAULT_CACHE_URL, help='CACHE_URL to serve with ("": unset)'
    )
    parser.add_argument("--database", default="phoenix_stress", help="PostgreSQL database")
    parser.add_argument("--budget", type=int, help="hard deadline in seconds")
    parser.add_argument("--only", default="", help="comma-separated surface names")
    parser.add_argument(
        "--skip-checks",
        action="store_true",
        help="pass --skip-checks to manage.py commands (serve a configuration checks refuse)",
    )
    args = parser.parse_args(argv)
    trials = args.trials or (3 if args.quick else 10)
    if not 1 <= trials <= 50:
        parser.error("--trials must be between 1 and 50")
    only = tuple(name for name in args.only.split(",") if name)
    unknown = set(only) - {surface.name for surface in SURFACES}
    if unknown:
        parser.error(f"--only: unknown surface(s) {', '.join(sorted(unknown))}")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", args.database) or args.database in (
        "postgres",
        "template0",
        "template1",
    ):
        parser.error("--database: a plain lowercase identifier, not a system database")
    # Measured here: --quick takes about 80 s on two idle cores, the full run about 6 minutes.
    default_budget = 170 if args.quick else 600
    budget = args.budget or (60 + trials * len(SURFACES) * 6 if args.trials else default_budget)
    return Config(
        quick=args.quick,
        trials=trials,
        app_dir=args.app_dir.resolve(),
        cache_url=args.cache_url,
        database=args.database,
        write=args.write,
        budget=budget,
        only=only,
        skip_checks=args.skip_checks,
        tail=1.0 if args.quick else 1.5,
        concurrent_runs=3 if args.quick else 5,
    )


# Secrets and redaction ----------------------------------------------------------------------

_SECRETS: set[str] = set()


def new_secret() -> str:
    """32+ characters with a digit and a lowercase letter, as phoenix_apikeys' checks demand."""
    value = f"s{secrets.token_hex(24)}0"
    _SECRETS.add(value)
    return value


def redact(text: str) -> str:
    """Belt and braces: no key, secret or password reaches the terminal or the report."""
    text = KEY_PATTERN.sub("[key redacted]", text)
    for value in _SECRETS:
        text = text.replace(value, "[secret redacted]")
    return text


def say(text: str) -> None:
    print(redact(text), flush=True)


# HTTP ----------------------------------------------------------------------------------------


def fetch(
    port: int,
    method: str,
    path: str,
    credential: str | None,
    timeout: float,
    source: str = LOOPBACK,
) -> int:
    """One request on a fresh connection; the status, or STATUS_ERROR on a timeout or error.

    ``source`` is the client address (all of 127.0.0.0/8 is loopback): each key's requests come
    from an address of its own, so the app's throttle of failed attempts, which its revoked
    requests trip, never touches another key's traffic or the admin's.
    """
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    bind = None if source == LOOPBACK else (source, 0)
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout, source_address=bind)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return STATUS_ERROR
    finally:
        connection.close()


def no_control_socket() -> list[str]:
    """gunicorn 24+ opens a control socket at one fixed path per user; two masters would share
    it, so turn it off where the option exists."""
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class FormFields(HTMLParser):
    """The fields a browser would submit for one form, so a resubmission keeps every value."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self.select: str | None = None
        self.textarea: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.inside = attributes.get("id") == self.form_id
        elif not self.inside or "disabled" in attributes:
            return
        elif tag == "input":
            self.add_input(attributes)
        elif tag == "select":
            self.select = attributes.get("name")
        elif tag == "option" and self.select and "selected" in attributes:
            self.fields.append((self.select, attributes.get("value") or ""))
        elif tag == "textarea":
            self.textarea, self.text = attributes.get("name"), []

    def add_input(self, attributes: dict[str, str | None]) -> None:
        name, kind = attributes.get("name"), (attributes.get("type") or "text").lower()
        if not name or kind in {"submit", "button", "image", "reset", "file"}:
            return
        if kind in {"checkbox", "radio"} and "checked" not in attributes:
            return
        default = "on" if kind in {"checkbox", "radio"} else ""
        self.fields.append((name, attributes.get("value") or default))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.fields.append((self.textarea, "".join(self.text).removeprefix("\n")))
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.text.append(data)


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if match is None:
        raise HarnessError("no CSRF token on the admin page")
    return match.group(1)


# Keys and plans -----------------------------------------------------------------------------


@dataclass
class Key:
    name: str
    kind: str  # "user" or "system"
    owner: str | None  # username, for user keys
    via: str  # minted by "seed" (the set-up shell), "command" (create_*_key) or "rest"
    plaintext: str = field(repr=False, default="")
    id: str = ""
    source: str = LOOPBACK  # the client address its own requests come from

    @property
    def pk(self) -> int:
        return int(base64.b64decode(self.id).decode("ascii").rpartition(":")[2])


@dataclass(frozen=True)
class Surface:
    """A way to revoke; ``prepare`` does everything but the revoke and returns the revoke."""

    name: str
    description: str
    kinds: tuple[str, ...]  # key kinds, cycled over the trials
    prepare: Callable[[Harness, Key, int], Callable[[], None]]
    system_via_rest: bool = False  # system keys minted over REST, else by create_system_key


@dataclass
class Sample:
    sent: float
    host: str
    path: str
    status: int


@dataclass
class Trial:
    surface: str
    number: int
    kind: str
    key_name: str
    samples: list[Sample]
    revoke_start: float
    revoke_end: float
    error: str | None
    stored: str = "unchecked"  # after the run: "deleted", "owner_inactive" or "active"

    @property
    def after(self) -> list[Sample]:
        return [sample for sample in self.samples if sample.sent >= self.revoke_end]

    @property
    def leaks(self) -> list[Sample]:
        return [sample for sample in self.after if sample.status == 200]

    @property
    def broken(self) -> list[Sample]:
        """5xx and transport errors, before or after the revoke."""
        return [s for s in self.samples if s.status >= 500 or s.status == STATUS_ERROR]

    @property
    def failed(self) -> bool:
        stale = self.stored == "active"
        return bool(self.error or self.leaks or self.broken or not self.after or stale)

    def latest_leak_ms(self) -> float | None:
        leaks = self.leaks
        return max(s.sent - self.revoke_end for s in leaks) * 1000 if leaks else None


@dataclass
class ConcurrentRun:
    number: int
    statuses: Counter[int]
    refused_after: bool
    error: str | None = None

    @property
    def failed(self) -> bool:
        expected = Counter({204: 1, 404: sum(self.statuses.values()) - 1})
        return bool(self.error) or self.statuses != expected or not self.refused_after


# The harness ---------------------------------------------------------------------------------


class Harness:
    """Owns the database, the two gunicorn masters, the admin session and the minted keys."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix="phoenix-stress-"))
        self.admin_secret = new_secret()
        self.admin_password = new_secret()
        self.env = self.child_env()
        self.ports = {host: free_port() for host in HOSTS}
        self.servers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []
        self.admin = requests.Session()
        self.users: dict[str, int] = {}
        self.module_path = ""

    # Environment and processes ---------------------------------------------------------------

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "DJANGO_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(self.config.app_dir), env.get("PYTHONPATH", "")]),
            DJANGO_SETTINGS_MODULE="example.settings",
            DJANGO_SECRET_KEY=new_secret(),
            DJANGO_DEBUG="false",
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self.config.database_url,
            CACHE_URL=self.config.cache_url,
            PHOENIX_SECRET=new_secret(),
            PHOENIX_ADMIN_SECRET=self.admin_secret,
        )
        if not self.config.cache_url:  # --cache-url "": the example project's no-cache default
            del env["CACHE_URL"]
        return env

    @property
    def project(self) -> Path:
        return self.config.app_dir / "example_project"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def manage(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
        """Run ``manage.py`` as its own process; stdout, or HarnessError with stderr's tail."""
        skip = ["--skip-checks"] if self.config.skip_checks and args[0] != "shell" else []
        command = [sys.executable, str(self.project / "manage.py"), *args, *skip]
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py, no shell
                command,
                input=stdin,
                capture_output=True,
                text=True,
                env=env or self.env,
                cwd=self.project,
                timeout=self.config.command_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(f"manage.py {args[0]} timed out") from None
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise HarnessError(f"manage.py {args[0]} exited {done.returncode}: {redact(tail)}")
        return done.stdout

    def shell_json(self, code: str, env: dict[str, str] | None = None) -> Any:
        """Run code in ``manage.py shell -c``; it prints one marked JSON line, read back here."""
        out = self.manage("shell", "-c", code, env=env)
        for line in out.splitlines():
            if line.startswith(JSON_MARKER):
                return json.loads(line.removeprefix(JSON_MARKER))
        raise HarnessError("manage.py shell printed no result")

    # Set-up ----------------------------------------------------------------------------------

    def reset_stores(self) -> None:
        """A fresh database of our own and, for Redis, an empty db 9: trials start clean."""
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
            name = sql.Identifier(self.config.database)
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
        if self.config.cache_url.startswith("redis://"):
            client = redis.Redis.from_url(self.config.cache_url, socket_timeout=5)
            client.flushdb()
            client.close()

    def migrate_and_seed(self, usernames: list[str], keys: list[Key]) -> None:
        """Migrate, then one shell creates the superuser, the users and most user keys: one
        process instead of one per key keeps --quick quick on two cores."""
        self.manage("migrate", "--noinput")
        env = {
            **self.env,
            "STRESS_ADMIN_PASSWORD": self.admin_password,
            "STRESS_USERS": json.dumps(usernames),
            "STRESS_KEYS": json.dumps([[key.name, key.owner] for key in keys]),
        }
        result = self.shell_json(SEED_SCRIPT, env=env)
        self.users = {name: int(pk) for name, pk in result["users"].items()}
        for key in keys:
            key.plaintext = result["keys"][key.name]
        self.module_path = result["module"]
        if not Path(self.module_path).resolve().is_relative_to(self.config.app_dir):
            raise HarnessError(f"phoenix_apikeys imported from {self.module_path}, not the app dir")

    def start_servers(self) -> None:
        """Two masters, run from the project directory: ``python -m`` puts the working directory
        first on sys.path, so from anywhere else another checkout's phoenix_apikeys could win."""
        self.check_served_code()
        for host in HOSTS:
            log = (self.workdir / f"gunicorn-{host}.log").open("wb")
            self.logs.append(log)
            command = [
                *(sys.executable, "-m", "gunicorn", "example.wsgi", "-w", "2"),
                *("-b", f"{LOOPBACK}:{self.ports[host]}", "--chdir", str(self.project)),
                *("--timeout", "30", "--graceful-timeout", "3", "--log-level", "warning"),
                *no_control_socket(),
                *self.server_options(host),
            ]
            self.servers.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn, no shell
                    command,
                    env=self.env,
                    cwd=self.project,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 30
        for host in HOSTS:
            while fetch(self.ports[host], "GET", PATHS[0], None, 2.0) not in (401, 403):
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.servers):
                    raise HarnessError(f"host {host} did not come up; see {self.workdir}")
                time.sleep(0.2)

    def server_options(self, host: str) -> list[str]:
        """More gunicorn options for ``host``'s master (stress/restrictions.py's access log)."""
        return []

    def check_served_code(self) -> None:
        """Import phoenix_apikeys exactly as gunicorn will (same cwd, env, ``-m``-style path)."""
        code = "import phoenix_apikeys; print(phoenix_apikeys.__file__)"
        done = subprocess.run(  # noqa: S603 - our own interpreter, no shell
            [sys.executable, "-c", code],
            env=self.env,
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        served = Path(done.stdout.strip()).resolve()
        if not served.is_relative_to(self.config.app_dir):
            raise HarnessError(f"gunicorn would serve {served}, not {self.config.app_dir}")

    def stop_servers(self) -> None:
        """SIGTERM each master (it stops its workers), then SIGKILL its process group if needed."""
        for server in self.servers:
            with contextlib.suppress(ProcessLookupError):
                server.terminate()
        for server in self.servers:
            try:
                server.wait(timeout=8)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)
        self.servers.clear()
        for log in self.logs:
            log.close()
        self.logs.clear()

    def log_tracebacks(self) -> int:
        return sum(
            path.read_text(errors="replace").count("Traceback")
            for path in self.workdir.glob("gunicorn-*.log")
        )

    def admin_login(self) -> None:
        url = self.url("A", "/admin/login/")
        page = self.admin.get(url, timeout=10)
        data = {
            "csrfmiddlewaretoken": csrf_token(page.text),
            "username": ADMIN_USERNAME,
            "password": self.admin_password,
            "next": "/admin/",
        }
        response = self.admin.post(url, data=data, timeout=10, allow_redirects=False)
        if response.status_code != 302 or "sessionid" not in self.admin.cookies:
            raise HarnessError(f"admin login failed ({response.status_code})")

    def url(self, host: str, path: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[host]}{path}"

    # Keys ------------------------------------------------------------------------------------

    def mint(self, keys: list[Key]) -> None:
        """Mint the rest of the run's keys up front, so a trial's clock runs only around its
        revoke; then read every key's id from list_api_keys."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(self.mint_one, [key for key in keys if key.via != "seed"]))
        for key in keys:
            if not KEY_PATTERN.fullmatch(key.plaintext):
                raise HarnessError(f"minting {key.name} gave no key")
        listed = json.loads(self.manage("list_api_keys", "--json"))
        ids = {entry["name"]: entry["id"] for entry in listed}
        for key in keys:
            if key.name not in ids:
                raise HarnessError(f"{key.name} is not in list_api_keys")
            key.id = ids[key.name]

    def mint_one(self, key: Key) -> None:
        if key.kind == "user":
            key.plaintext = self.manage(
                "create_user_key", "--user", str(key.owner), "--name", key.name
            ).strip()
        elif key.via == "rest":
            response = requests.post(
                self.url("A", "/v1/system/api_keys"),
                json={"data": {"name": key.name}},
                headers={"Authorization": f"Bearer {self.admin_secret}"},
                timeout=10,
            )
            if response.status_code != 201:
                raise HarnessError(f"POST /v1/system/api_keys: {response.status_code}")
            key.plaintext = response.json()["data"]["key"]
        else:
            key.plaintext = self.manage("create_system_key", "--name", key.name).strip()

    def expect(
        self,
        host: str,
        method: str,
        path: str,
        credential: str,
        ok: set[int],
        source: str = LOOPBACK,
    ) -> None:
        timeout = self.config.request_timeout
        status = fetch(self.ports[host], method, path, credential, timeout, source)
        if status not in ok:
            raise HarnessError(f"{method} {path} on host {host}: {status}")

    def admin_page(self, path: str) -> str:
        try:
            response = self.admin.get(self.url("A", path), timeout=10)
        except requests.RequestException as error:
            raise HarnessError(f"GET {path}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise HarnessError(f"GET {path}: {response.status_code}")
        return response.text

    def admin_post(self, path: str, data: list[tuple[str, str]]) -> None:
        """A form POST as the browser sends it; the admin answers a success with a redirect."""
        try:
            response = self.admin.post(
                self.url("A", path), data=data, timeout=10, allow_redirects=False
            )
        except requests.RequestException as error:
            raise HarnessError(f"POST {path}: {type(error).__name__}") from None
        if response.status_code != 302:
            raise HarnessError(f"POST {path}: {response.status_code}, expected a redirect")

    # Trials ----------------------------------------------------------------------------------

    def warm(self, key: Key, samples: list[Sample]) -> None:
        """A few 200s per host and path, so the key sits in the cache before the revoke."""
        for i in range(self.config.warm_requests * len(HOSTS)):
            host, path = HOSTS[i % 2], PATHS[(i // 2) % 2]
            sent = time.monotonic()
            status = fetch(self.ports[host], "GET", path, key.plaintext, 5.0, key.source)
            samples.append(Sample(sent, host, path, status))
            if status != 200:
                raise HarnessError(f"warm-up {path} on {host}: {status} before any revoke")

    def load(self, key: Key, offset: int, stop: threading.Event, out: list[Sample]) -> None:
        """Alternate hosts and paths until told to stop; the send time is taken before connect."""
        i = offset
        while not stop.is_set():
            host, path = HOSTS[i % 2], PATHS[(i // 2) % 2]
            sent = time.monotonic()
            status = fetch(
                self.ports[host],
                "GET",
                path,
                key.plaintext,
                self.config.request_timeout,
                key.source,
            )
            out.append(Sample(sent, host, path, status))
            i += 1

    def run_trial(self, surface: Surface, key: Key, number: int) -> Trial:
        samples: list[Sample] = []
        start = end = time.monotonic()
        try:
            revoke = surface.prepare(self, key, number)
            self.warm(key, samples)
        except HarnessError as failure:
            return Trial(
                surface.name, number, key.kind, key.name, samples, start, end, str(failure)
            )
        stop = threading.Event()
        outs: list[list[Sample]] = [[] for _ in range(self.config.load_threads)]
        threads = [
            threading.Thread(target=self.load, args=(key, i, stop, out), daemon=True)
            for i, out in enumerate(outs)
        ]
        for thread in threads:
            thread.start()
        error: str | None = None
        try:
            time.sleep(self.config.preload)
            start = time.monotonic()
            try:
                revoke()
            except HarnessError as failure:
                error = str(failure)  # the load still runs out its tail: the trial is recorded
            end = time.monotonic()
            time.sleep(self.config.tail)
        finally:
            stop.set()
            for thread in threads:
                thread.join(self.config.request_timeout + 2)
        samples.extend(sample for out in outs for sample in out)
        return Trial(surface.name, number, key.kind, key.name, samples, start, end, error)

    def concurrent_run(self, key: Key, number: int) -> ConcurrentRun:
        """N DELETEs of one key released together over both hosts: one 204, the rest 404."""
        try:
            self.warm(key, [])
        except HarnessError as error:
            return ConcurrentRun(number, Counter(), refused_after=False, error=str(error))
        count = self.config.concurrent_deletes
        gate = threading.Barrier(count, timeout=30)
        path = f"/v1/user/api_keys/{key.id}"

        def delete(i: int) -> int:
            gate.wait()
            return fetch(self.ports[HOSTS[i % 2]], "DELETE", path, self.admin_secret, 15.0)

        with ThreadPoolExecutor(max_workers=count) as pool:
            statuses = Counter(pool.map(delete, range(count)))
        time.sleep(0.2)
        probes = [
            fetch(
                self.ports[HOSTS[i % 2]], "GET", PATHS[i // 2 % 2], key.plaintext, 5.0, key.source
            )
            for i in range(8)
        ]
        return ConcurrentRun(number, statuses, all(status == 401 for status in probes))


ADMIN_USERNAME = "stress-admin"

SEED_SCRIPT = f"""
import json, os
import phoenix_apikeys
from django.contrib.auth import get_user_model
from phoenix_apikeys.models import UserKey
User = get_user_model()
User.objects.create_superuser(
    {ADMIN_USERNAME!r}, "admin@example.invalid", os.environ["STRESS_ADMIN_PASSWORD"]
)
users = {{
    name: User.objects.create_user(name, name + "@example.invalid")
    for name in json.loads(os.environ["STRESS_USERS"])
}}
keys = {{
    name: UserKey.objects.create_key(user=users[owner], name=name)[1]
    for name, owner in json.loads(os.environ["STRESS_KEYS"])
}}
pks = {{name: user.pk for name, user in users.items()}}
result = {{"module": phoenix_apikeys.__file__, "users": pks, "keys": keys}}
print({JSON_MARKER!r} + json.dumps(result))
"""


# Surfaces ------------------------------------------------------------------------------------


def rest_user_delete(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    """Even trials with the owner's own key, odd ones with the admin secret."""
    credential = key.plaintext if trial % 2 == 0 else h.admin_secret
    path = f"/v1/user/api_keys/{key.id}"
    return lambda: h.expect("A", "DELETE", path, credential, {204}, key.source)


def rest_system_delete(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    path = f"/v1/system/api_keys/{key.id}"
    return lambda: h.expect("A", "DELETE", path, h.admin_secret, {204})


def admin_delete_key(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    """The confirmation page is fetched first; the revoke is its POST with post=yes."""
    path = f"/admin/phoenix_apikeys/{key.kind}key/{key.pk}/delete/"
    token = csrf_token(h.admin_page(path))
    return lambda: h.admin_post(path, [("csrfmiddlewaretoken", token), ("post", "yes")])


def admin_deactivate_owner(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    """Resubmit the user's change form exactly as served, but with is_active unticked."""
    path = f"/admin/{USER_ADMIN}/{h.users[str(key.owner)]}/change/"
    form = FormFields("user_form")
    form.feed(h.admin_page(path))
    if ("is_active", "on") not in form.fields:
        raise HarnessError("the user change form has no ticked is_active")
    data = [pair for pair in form.fields if pair[0] != "is_active"] + [("_save", "Save")]
    return lambda: h.admin_post(path, data)


def admin_delete_owner(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    path = f"/admin/{USER_ADMIN}/{h.users[str(key.owner)]}/delete/"
    token = csrf_token(h.admin_page(path))
    return lambda: h.admin_post(path, [("csrfmiddlewaretoken", token), ("post", "yes")])


def managed(h: Harness, *args: str, stdin: str = "") -> Callable[[], None]:
    """A revoke that is a whole ``manage.py`` process: it has returned when the process exited."""

    def revoke() -> None:
        h.manage(*args, stdin=stdin)

    return revoke


def command_revoke_stdin(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    return managed(h, "revoke_api_key", "--stdin", stdin=key.plaintext + "\n")


def command_revoke_id(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    return managed(h, "revoke_api_key", key.id)


def shell_key_delete(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    model = "UserKey" if key.kind == "user" else "SystemKey"
    code = f"from phoenix_apikeys.models import {model}; {model}.objects.get(pk={key.pk}).delete()"
    return managed(h, "shell", "-c", code)


def shell_deactivate_owner(h: Harness, key: Key, trial: int) -> Callable[[], None]:
    code = (
        "from django.contrib.auth import get_user_model; "
        f"u = get_user_model().objects.get(pk={h.users[str(key.owner)]}); "
        "u.is_active = False; u.save()"
    )
    return managed(h, "shell", "-c", code)


SURFACES: tuple[Surface, ...] = (
    Surface("rest-user-delete", "REST DELETE /v1/user/api_keys/{id} (own key | admin secret)",
            ("user",), rest_user_delete),
    Surface("rest-system-delete", "REST DELETE /v1/system/api_keys/{id} (admin secret)",
            ("system",), rest_system_delete, system_via_rest=True),
    Surface("admin-delete-userkey", "admin: user key delete confirmation, post=yes",
            ("user",), admin_delete_key),
    Surface("admin-delete-systemkey", "admin: system key delete confirmation, post=yes",
            ("system",), admin_delete_key, system_via_rest=True),
    Surface("admin-deactivate-owner", "admin: owner's change form resubmitted, is_active off",
            ("user",), admin_deactivate_owner),
    Surface("admin-delete-owner", "admin: owner's delete confirmation, post=yes",
            ("user",), admin_delete_owner),
    Surface("cmd-revoke-stdin", "manage.py revoke_api_key --stdin (user | system key)",
            ("user", "system"), command_revoke_stdin),
    Surface("cmd-revoke-id", "manage.py revoke_api_key <id> (user | system key)",
            ("user", "system"), command_revoke_id),
    Surface("shell-key-delete", "manage.py shell -c: key.delete() (user | system key)",
            ("user", "system"), shell_key_delete),
    Surface("shell-deactivate-owner", "manage.py shell -c: is_active=False; save()",
            ("user",), shell_deactivate_owner),
)  # fmt: skip


# The run -------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Which key each trial revokes; each user key has an owner of its own."""

    trials: list[tuple[Surface, Key, int]]
    concurrent: list[Key]

    @property
    def keys(self) -> list[Key]:
        return [key for _, key, _ in self.trials] + self.concurrent

    @property
    def usernames(self) -> list[str]:
        return [str(key.owner) for key in self.keys if key.owner]

    @property
    def seeded(self) -> list[Key]:
        return [key for key in self.keys if key.via == "seed"]


def make_plan(config: Config) -> Plan:
    surfaces = [s for s in SURFACES if not config.only or s.name in config.only]
    trials = []
    for index, surface in enumerate(surfaces):
        for number in range(config.trials):
            kind = surface.kinds[number % len(surface.kinds)]
            name = f"stress-s{index:02d}t{number:02d}"
            owner = f"u-{name}" if kind == "user" else None
            via = "seed" if kind == "user" else "rest" if surface.system_via_rest else "command"
            source = client_source(len(trials))
            trials.append((surface, Key(name, kind, owner, via, source=source), number))
    concurrent = [  # these exercise create_user_key
        Key(
            f"stress-c{number:02d}",
            "user",
            f"u-stress-c{number:02d}",
            "command",
            source=client_source(len(trials) + number),
        )
        for number in range(config.concurrent_runs)
    ]
    return Plan(trials, concurrent)


def client_source(number: int) -> str:
    """A loopback address of its own for key ``number`` (127.0.10.1 onwards)."""
    return f"127.0.{10 + number // 250}.{1 + number % 250}"


@dataclass
class Outcome:
    trials: list[Trial]
    concurrent: list[ConcurrentRun]
    tracebacks: int
    wall: float
    setup: float
    versions: dict[str, str]
    failures: list[str]


def execute(config: Config, harness: Harness) -> Outcome:
    plan = make_plan(config)
    say(f"serving {config.app_dir}, key cache {cache_text(config)}; logs in {harness.workdir}")
    harness.reset_stores()
    harness.migrate_and_seed(plan.usernames, plan.seeded)
    harness.start_servers()
    harness.admin_login()
    harness.mint(plan.keys)
    setup = harness.elapsed()
    ports = ", ".join(f"{host} on :{port}" for host, port in harness.ports.items())
    say(f"[{setup:6.1f}s] set up: hosts {ports}; {len(plan.keys)} keys minted")
    trials = []
    for surface, key, number in plan.trials:
        trial = harness.run_trial(surface, key, number)
        trials.append(trial)
        say(trial_line(harness, trial, config.trials))
    concurrent = []
    for number, key in enumerate(plan.concurrent):
        run = harness.concurrent_run(key, number)
        concurrent.append(run)
        say(concurrent_line(harness, run))
    check_stored(harness, trials)
    tracebacks = harness.log_tracebacks()
    failures = [f"{t.surface} trial {t.number + 1}: {why(t)}" for t in trials if t.failed]
    failures += [
        f"concurrent deletes run {r.number + 1}: {r.error or format_statuses(r.statuses)}"
        f"{'' if r.refused_after else ', key still accepted afterwards'}"
        for r in concurrent
        if r.failed
    ]
    if tracebacks:
        failures.append(f"{tracebacks} traceback(s) in the gunicorn logs")
    return Outcome(
        trials, concurrent, tracebacks, harness.elapsed(), setup, versions(config), failures
    )


def check_stored(harness: Harness, trials: list[Trial]) -> None:
    """Did each revoke reach the database? Tells a cache that kept a key from a revoke that
    never happened (e.g. a resubmitted admin form that did not save)."""
    listed = json.loads(harness.manage("list_api_keys", "--json"))
    statuses = {entry["name"]: entry["status"] for entry in listed}
    for trial in trials:
        status = statuses.get(trial.key_name, "deleted")
        trial.stored = status if status in ("deleted", "owner_inactive") else "active"


def why(trial: Trial) -> str:
    reasons = []
    if trial.stored == "active":
        reasons.append("the key is still usable in the database after the run")
    if trial.error:
        reasons.append(trial.error)
    if trial.leaks:
        reasons.append(
            f"{len(trial.leaks)} success(es) after the revoke returned, the latest sent "
            f"{trial.latest_leak_ms():.0f} ms after it, on host(s) "
            f"{'+'.join(sorted({s.host for s in trial.leaks}))}"
        )
    if trial.broken:
        reasons.append(f"{len(trial.broken)} 5xx or transport error(s)")
    if not trial.after and not trial.error:
        reasons.append("no request was sent after the revoke")
    return "; ".join(reasons)


def trial_line(harness: Harness, trial: Trial, total: int) -> str:
    verdict = f"FAIL: {why(trial)}" if trial.failed else "ok"
    return (
        f"[{harness.elapsed():6.1f}s] {trial.surface:<23} {trial.number + 1}/{total} "
        f"{trial.kind:<6} requests {len(trial.samples):4} after {len(trial.after):4}  "
        f"200 after {len(trial.leaks):3}  {verdict}"
    )


def concurrent_line(harness: Harness, run: ConcurrentRun) -> str:
    verdict = f"FAIL{': ' + run.error if run.error else ''}" if run.failed else "ok"
    return (
        f"[{harness.elapsed():6.1f}s] concurrent deletes run {run.number + 1}: "
        f"{format_statuses(run.statuses)}; refused after: {run.refused_after}  {verdict}"
    )


def format_statuses(statuses: Counter[int]) -> str:
    names = {STATUS_ERROR: "error"}
    return ", ".join(f"{names.get(code, code)}: {n}" for code, n in sorted(statuses.items()))


def versions(config: Config) -> dict[str, str]:
    """What ran: library versions here, server versions asked of the servers themselves."""
    with psycopg.connect(PG_ADMIN_URL, connect_timeout=10) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    pg = str(row[0]).split()[0] if row else "?"
    redis_version = "not used"
    if config.cache_url.startswith("redis://"):  # the Redis the run used, not a default one
        client = redis.Redis.from_url(config.cache_url, socket_timeout=5)
        try:
            redis_version = str(client.info("server").get("redis_version", "?"))
        except redis.RedisError:
            redis_version = "not reachable"
        finally:
            client.close()
    return {
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "Django REST framework": importlib.metadata.version("djangorestframework"),
        "gunicorn": importlib.metadata.version("gunicorn"),
        "PostgreSQL": pg,
        "Redis": redis_version,
        "phoenix_apikeys code": code_version(config.app_dir),
    }


def code_version(app_dir: Path) -> str:
    """The served checkout's commit, and whether its app or example project had uncommitted
    changes (read-only git; other files, such as this harness, do not count)."""
    git = shutil.which("git")
    if git is None:
        return str(app_dir)
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never touch the index

    def git_out(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git by absolute path, read-only subcommands
            [git, "-C", str(app_dir), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
            check=True,
        ).stdout

    try:
        head = git_out("rev-parse", "--short", "HEAD").strip()
        dirty = git_out("status", "--porcelain", "--", "phoenix_apikeys", "example_project")
    except (subprocess.SubprocessError, OSError):
        return str(app_dir)
    return f"{head}{' + uncommitted changes to the app' if dirty.strip() else ''}"


# Reporting -----------------------------------------------------------------------------------


def surface_rows(outcome: Outcome) -> list[list[str]]:
    rows = []
    for surface in SURFACES:
        trials = [t for t in outcome.trials if t.surface == surface.name]
        if not trials:
            continue
        statuses: Counter[int] = Counter(s.status for t in trials for s in t.samples)
        leaks = sum(len(t.leaks) for t in trials)
        latest = [ms for t in trials if (ms := t.latest_leak_ms()) is not None]
        failed = sum(t.failed for t in trials)
        rows.append(
            [
                surface.name,
                str(len(trials)),
                str(sum(len(t.samples) for t in trials)),
                str(sum(len(t.after) for t in trials)),
                str(leaks),
                f"{max(latest):.0f}" if latest else "-",
                format_statuses(statuses),
                f"FAIL ({failed}/{len(trials)} trials)" if failed else "ok",
            ]
        )
    return rows


SURFACE_HEADERS = [
    "surface",
    "trials",
    "requests",
    "after revoke",
    "200 after",
    "latest 200 after (ms)",
    "statuses",
    "result",
]
CONCURRENT_HEADERS = ["run", "DELETEs", "statuses", "refused after", "result"]


def concurrent_rows(outcome: Outcome) -> list[list[str]]:
    return [
        [
            str(run.number + 1),
            str(sum(run.statuses.values())),
            format_statuses(run.statuses),
            "yes" if run.refused_after else "no",
            "FAIL" if run.failed else "ok",
        ]
        for run in outcome.concurrent
    ]


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def command_line(argv: list[str]) -> str:
    return " ".join(["python stress/revocation.py", *argv])


def verdict(outcome: Outcome) -> str:
    if not outcome.failures:
        return (
            "**Passed**: no request sent after a revoke returned was accepted, on either host, "
            "and every concurrent delete had exactly one winner."
        )
    failed = [t for t in outcome.trials if t.failed]
    surfaces = len({t.surface for t in failed})
    runs = sum(r.failed for r in outcome.concurrent)
    return (
        f"**Failed**: {len(failed)} of {len(outcome.trials)} trials, on {surfaces} surface(s); "
        f"{runs} of {len(outcome.concurrent)} concurrent-delete runs. Details under Failures."
    )


def markdown(config: Config, outcome: Outcome, argv: list[str]) -> str:
    """The report page: how it was run, so it can be run again, then what it saw."""
    versions_text = "\n".join(f"  - {name}: {value}" for name, value in outcome.versions.items())
    surfaces_text = "\n".join(f"- `{s.name}`: {s.description}" for s in SURFACES)
    failures_text = "\n".join(f"- {failure}" for failure in outcome.failures) or "None."
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""# Reliability

Is a revoked key refused by every serving process once the revoke has returned?
`stress/revocation.py` checks it end to end, with real processes, for every way to revoke
(see `stress/README.md`).

{verdict(outcome)}

## How it was run

- Command: `{command_line(argv)}`
- Date: {date}; wall time {outcome.wall:.0f} s, of which set-up {outcome.setup:.0f} s
  (database, migrate, users, {len(outcome.trials) + len(outcome.concurrent)} keys)
- Versions:
{versions_text}
- Topology: one machine ({os.cpu_count()} CPUs). Two gunicorn masters on 127.0.0.1, *host A*
  and *host B*, each with 2 sync workers (`gunicorn example.wsgi -w 2`), serving the example
  project with `DJANGO_DEBUG=false`; one PostgreSQL database (`{config.database}`, created
  fresh); key cache: {cache_text(config)}. The harness is one more process: its load threads,
  the admin session and the REST calls start there; the management commands and shells are
  its child processes.

Each trial revokes a fresh key: user keys (minted by a set-up shell with
`UserKey.objects.create_key`, each for a user of its own) or system keys (minted by
`create_system_key` or by `POST /v1/system/api_keys` with the admin secret). The harness sends
{config.warm_requests} requests per host that must all succeed, so the key is cached; then
{config.load_threads} threads send `GET /api/hello/` and `GET /v1/user` with it, alternating
hosts, from {config.preload} s before the revoke until {config.tail} s after it returned. REST
and admin revokes go to host A. Every send time is `time.monotonic()` in the harness process,
taken before connecting. **A 200 for a request sent after the revoke returned is a failure**,
as is any 5xx or transport error, a revoke that did not succeed, a trial with no request after
the revoke, or a key still usable in the database at the end (`list_api_keys --json`).

## Revocation, per surface

{markdown_table(SURFACE_HEADERS, surface_rows(outcome))}

{surfaces_text}

## Concurrent deletes

{config.concurrent_deletes} concurrent `DELETE /v1/user/api_keys/{{id}}` of one warm key (minted by
`create_user_key`), with the admin secret, split over both hosts and released together by a
barrier: exactly one `204` and the rest `404`, then the key must be refused (`401`) on both hosts.

{markdown_table(CONCURRENT_HEADERS, concurrent_rows(outcome))}

## Failures

{failures_text}

Tracebacks in the gunicorn logs: {outcome.tracebacks}.
"""


def cache_text(config: Config) -> str:
    return f"`CACHE_URL={config.cache_url}`" if config.cache_url else "none (`CACHE_URL` unset)"


def report(config: Config, outcome: Outcome, argv: list[str]) -> None:
    say("\n" + text_table(SURFACE_HEADERS, surface_rows(outcome)))
    say("\n" + text_table(CONCURRENT_HEADERS, concurrent_rows(outcome)))
    say(f"\nversions: {outcome.versions}")
    say(f"tracebacks in gunicorn logs: {outcome.tracebacks}; wall time {outcome.wall:.1f} s")
    for failure in outcome.failures:
        say(f"FAILURE: {failure}")
    say("FAILED" if outcome.failures else "PASSED")
    if config.write:
        config.write.parent.mkdir(parents=True, exist_ok=True)
        # The page's other parts (stress/faults.py's) are kept: see stress/common.py.
        page = redact(markdown(config, outcome, argv)) + kept_sections(config.write)
        config.write.write_text(page)
        say(f"wrote {config.write}")


# Entry point ---------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """SIGALRM at the budget, SIGTERM (e.g. from `timeout`) too: both unwind to the cleanup."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Deadline(f"signal {signum}: the run hit its deadline or was terminated")

    previous = signal.signal(signal.SIGALRM, expire), signal.signal(signal.SIGTERM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def run_guarded(harness: Harness, budget: int, body: Callable[[], int]) -> int:
    """``body``'s exit code (0 passed, 1 failed) within the time budget, else 2 for a harness
    error, 3 past the budget and 130 when interrupted. The servers stop whatever happens; their
    logs are kept unless the run passed."""
    code = 2
    try:
        with deadline(budget):
            code = body()
            return code
    except (HarnessError, psycopg.Error, redis.RedisError, requests.RequestException) as error:
        say(f"HARNESS ERROR: {type(error).__name__}: {error}")
        return 2
    except Deadline as error:
        say(f"ABORTED: {error}")
        return 3
    except KeyboardInterrupt:
        say("INTERRUPTED")
        return 130
    finally:
        harness.stop_servers()
        if code:
            say(f"gunicorn logs kept in {harness.workdir}")
        else:
            shutil.rmtree(harness.workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    config = parse_args(argv)
    harness = Harness(config)

    def body() -> int:
        outcome = execute(config, harness)
        harness.stop_servers()
        report(config, outcome, argv)
        return 1 if outcome.failures else 0

    return run_guarded(harness, config.budget, body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
