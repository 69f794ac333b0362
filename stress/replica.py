"""Read replica: with reads routed to a lagging replica, are keys still decided on the primary?

A real PostgreSQL streaming replica of the machine's cluster (pg_basebackup -R, on a free port
in a temporary directory) applies every commit `--delay` seconds late (recovery_min_apply_delay).
The example project runs with REPLICA_DATABASE_URL naming it, so example.routers sends every read
there and writes to the primary; four gunicorn masters of one sync worker each serve it, first
with no key cache, then with Redis. Per case a key is created, revoked or rotated and then, from
the moment that returned until `--delay` + a tail, every worker is asked GET /api/hello/ with
each key involved: a new key must answer 200 and a revoked or replaced one 401, every time. The
replica is queried at the same time, to show it had not yet seen the change.

    python stress/replica.py [--quick] [--trials N] [--delay 3] [--app-dir PATH]
        [--write docs/reliability.md]

Needs PostgreSQL 15 on 127.0.0.1:5432 (user postgres, trust; Debian binaries in PG_BIN; the
replica runs as the `postgres` OS user when this runs as root), Redis on 127.0.0.1:6379 (db 11
is flushed). If the primary refuses replication connections, one pg_hba.conf line is added
(replication, user postgres, 127.0.0.1/32 only) and the configuration reloaded; the line is
removed and the configuration reloaded again when the run ends. The primary is never restarted.
Exit status: 0 passed, 1 a failure seen, 2 harness error, 3 deadline or SIGTERM, 130 Ctrl-C.
No plaintext key, secret or password is printed: every line goes through revocation.redact.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import itertools
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from common import put_section
from psycopg import sql
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
    fetch,
    format_statuses,
    free_port,
    markdown_table,
    new_secret,
    no_control_socket,
    redact,
    say,
    text_table,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
HBA_LINE = (
    "host replication postgres 127.0.0.1/32 trust  # added by stress/replica.py while it runs"
)
REDIS_URL = "redis://127.0.0.1:6379/11"
PHASES = {"no cache": "", "redis": REDIS_URL}  # CACHE_URL per phase ("" leaves it unset)
WORKERS = ("w1", "w2", "w3", "w4")  # one gunicorn master with one sync worker each
OWNER = "replica-owner"
EXPECT = {"new": 200, "old": 401}
_sources = itertools.count()


def source() -> str:
    """A fresh loopback client address per probe: the failed-auth throttle never sees 30."""
    n = next(_sources) % 62500
    return f"127.1.{n // 250}.{1 + n % 250}"


def pk_of(key_id: str) -> int:
    return int(base64.b64decode(key_id).decode("ascii").rpartition(":")[2])


# The primary's pg_hba and the replica ---------------------------------------------------------


def as_postgres() -> dict[str, Any]:
    """Popen arguments running a PostgreSQL binary as the cluster's OS user (it refuses root)."""
    if os.geteuid() != 0:
        return {}
    home = pwd.getpwnam("postgres").pw_dir
    return {"user": "postgres", "group": "postgres", "env": {"PATH": "/usr/bin:/bin", "HOME": home}}


def replication_allowed() -> bool:
    try:
        psycopg.connect(f"{PG_ADMIN_URL}?replication=true", connect_timeout=5).close()
    except psycopg.OperationalError as error:
        if "pg_hba.conf" in str(error):
            return False
        raise
    return True


class PrimaryAccess:
    """Adds the one pg_hba.conf line replication needs, if it is missing, and removes it after."""

    def __init__(self) -> None:
        self.hba: Path | None = None

    def reload(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
            connection.execute("SELECT pg_reload_conf()")

    def ensure(self) -> None:
        if replication_allowed():
            say("primary: replication connections from 127.0.0.1 already allowed; not changed")
            return
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=10) as connection:
            row = connection.execute("SHOW hba_file").fetchone()
        hba = Path(str(row[0]) if row else "")
        text = hba.read_text()
        with hba.open("a") as handle:  # in place: owner and mode stay as they are
            handle.write(("" if text.endswith("\n") else "\n") + HBA_LINE + "\n")
        self.hba = hba
        say(f"primary: added to {hba}: '{HBA_LINE}'; reloading (SIGHUP, no restart)")
        self.reload()
        for _ in range(50):
            if replication_allowed():
                return
            time.sleep(0.1)
        raise HarnessError("the primary still refuses replication after the pg_hba reload")

    def restore(self) -> None:
        if self.hba is None:
            return
        lines = self.hba.read_text().splitlines(keepends=True)
        self.hba.write_text("".join(line for line in lines if line.rstrip("\n") != HBA_LINE))
        self.hba = None
        self.reload()
        say("primary: pg_hba.conf line removed, configuration reloaded")


class Replica:
    """A hot standby of the primary in a directory of ours, on a free port, `delay` s late."""

    def __init__(self, workdir: Path, delay: float) -> None:
        self.root = workdir / "replica"
        self.data = self.root / "data"
        self.port = free_port()
        self.delay = delay
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "replica.log"

    def start(self, database: str) -> None:
        self.root.mkdir()
        if os.geteuid() == 0:
            self.root.parent.chmod(0o711)  # the postgres user must reach its directory
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        backup = [str(PG_BIN / "pg_basebackup"), "-h", LOOPBACK, "-p", "5432", "-U", "postgres"]
        backup += ["-D", str(self.data), "-R", "-X", "stream", "-c", "fast", "-w"]
        done = subprocess.run(  # noqa: S603 - PostgreSQL's own binary, no shell
            backup, capture_output=True, text=True, timeout=120, check=False, **as_postgres()
        )
        if done.returncode != 0:
            raise HarnessError(f"pg_basebackup exited {done.returncode}: {done.stderr.strip()}")
        conf = {
            "port": str(self.port),
            "listen_addresses": f"'{LOOPBACK}'",
            "unix_socket_directories": f"'{self.root}'",
            "hot_standby": "on",
            "recovery_min_apply_delay": f"'{int(self.delay * 1000)}ms'",
            "shared_buffers": "'32MB'",
            "fsync": "off",  # a throwaway copy
            "cluster_name": "'phoenix-replica'",
        }
        files = {
            "postgresql.conf": "".join(f"{name} = {value}\n" for name, value in conf.items()),
            "pg_hba.conf": "local all all trust\nhost all all 127.0.0.1/32 trust\n",
            "pg_ident.conf": "",
        }
        for name, text in files.items():
            (self.data / name).write_text(text)
            if os.geteuid() == 0:
                shutil.chown(self.data / name, "postgres", "postgres")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - PostgreSQL's own binary, no shell
                [str(PG_BIN / "postgres"), "-D", str(self.data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **as_postgres(),
            )
        give_up = time.monotonic() + 30
        while True:
            try:
                with self.connect(database) as connection:
                    row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
                if not (row and row[0]):
                    raise HarnessError("the replica is not in recovery")
                return
            except psycopg.OperationalError:
                if time.monotonic() > give_up or self.process.poll() is not None:
                    raise HarnessError(f"the replica did not come up; see {self.log}") from None
                time.sleep(0.2)

    def url(self, database: str) -> str:
        return f"postgres://postgres@{LOOPBACK}:{self.port}/{database}"

    def connect(self, database: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL; the directory goes."""
        process, self.process = self.process, None
        for sig in (signal.SIGINT, signal.SIGQUIT) if process else ():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
                break
        if process and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


# Cases -----------------------------------------------------------------------------------------

Rows = list[tuple[str, int, bool]]  # (table, pk, whether the row exists once the change is applied)
CASES = {  # name: (change, key kind, how)
    "create-user-rest": ("create", "user", "POST /v1/user/api_keys, the owner by basic auth"),
    "create-system-rest": ("create", "system", "POST /v1/system/api_keys, admin secret"),
    "revoke-user-rest": ("revoke", "user", "DELETE /v1/user/api_keys/{id}, admin secret"),
    "revoke-system-rest": ("revoke", "system", "DELETE /v1/system/api_keys/{id}, admin secret"),
    "revoke-user-command": ("revoke", "user", "manage.py revoke_api_key <id>"),
    "revoke-system-command": ("revoke", "system", "manage.py revoke_api_key <id>"),
    "rotate-user-rest": ("rotate", "user", "POST /v1/user/api_keys/{id}/rotate, grace 0, owner"),
    "rotate-system-rest": ("rotate", "system", "POST .../system/api_keys/{id}/rotate, grace 0"),
}
SEEDED = [name for name, (change, _, _) in CASES.items() if change != "create"]


@dataclass
class Probe:
    label: str  # "new" (must answer 200) or "old" (must answer 401)
    at: float  # send start, seconds after the change returned
    status: int
    sweep: bool = False  # sent at the end of the phase, well after the replica caught up


@dataclass
class Case:
    name: str
    phase: str
    trial: int
    probes: list[Probe] = field(default_factory=list)
    error: str | None = None
    lagged: bool | None = None  # the replica had not applied the change when it returned
    caught_up: float | None = None  # seconds after the change until the replica had
    done: float = 0.0  # time.monotonic() when the change returned
    keys: dict[str, str] = field(default_factory=dict, repr=False)  # label -> plaintext

    @property
    def wrong(self) -> list[Probe]:
        return [p for p in self.probes if p.status != EXPECT[p.label]]

    @property
    def failed(self) -> bool:
        return bool(self.error or self.wrong or not self.probes)


class ReplicaHarness(Harness):
    """revocation.py's harness (manage.py, gunicorn, logs) plus the replica and the cases."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        fields = (options.quick, options.trials, options.app_dir, "", options.database)
        super().__init__(Config(*fields, options.write, options.budget, (), skip_checks=False))
        self.owner_password = new_secret()
        self.access = PrimaryAccess()
        self.replica = Replica(self.workdir, options.delay)
        self.ports = {worker: free_port() for worker in WORKERS}
        self.seeded: dict[str, tuple[str, str]] = {}  # name -> (plaintext, id)
        self.tables: dict[str, str] = {}

    def use(self, cache_url: str) -> None:
        """The environment built once (same secrets), with this CACHE_URL ("" unsets it)."""
        self.env.pop("CACHE_URL", None)
        self.env.update({"CACHE_URL": cache_url} if cache_url else {})
        self.config = dataclasses.replace(self.config, cache_url=cache_url)

    def set_up(self) -> None:
        """Database, users and keys on the primary first, so the base backup has them all."""
        if not (self.project / "example" / "routers.py").exists():
            overlay = self.workdir / "overlay"
            overlay.mkdir()
            shutil.copy(REPO / "example_project/example/routers.py", overlay / "replica_routers.py")
            (overlay / "replica_settings.py").write_text(OVERLAY_SETTINGS)
            self.env["PYTHONPATH"] += os.pathsep + str(overlay)
            self.env["DJANGO_SETTINGS_MODULE"] = "replica_settings"
            say(f"{self.project} has no example/routers.py: served with settings from {overlay}")
        self.use("")
        self.reset_stores()
        self.manage("migrate", "--noinput")
        plan = itertools.product(PHASES, SEEDED, range(self.options.trials))
        names = ["/".join(map(str, case)) for case in plan]
        env = {**self.env, "REPLICA_OWNER": self.owner_password, "REPLICA_KEYS": json.dumps(names)}
        result = self.shell_json(SEED_SCRIPT, env=env)
        self.seeded = {name: tuple(pair) for name, pair in result["keys"].items()}
        self.tables = result["tables"]
        self.access.ensure()
        self.replica.start(self.config.database)
        self.env["REPLICA_DATABASE_URL"] = self.replica.url(self.config.database)
        self.check_routing()

    def check_routing(self) -> None:
        """Import the app as gunicorn will: this checkout's phoenix_apikeys, reads to replica."""
        code = (
            "import django, json; django.setup(); import phoenix_apikeys as p; "
            "from django.db import router as r; from phoenix_apikeys.models import UserKey as K; "
            "print(json.dumps([p.__file__, r.db_for_read(K), r.db_for_write(K)]))"
        )
        done = subprocess.run(  # noqa: S603 - our own interpreter, no shell
            [sys.executable, "-c", code],
            env=self.env,
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise HarnessError(f"the app does not import: {redact(done.stderr.strip()[-300:])}")
        module, read, write = json.loads(done.stdout.strip().splitlines()[-1])
        if not Path(module).resolve().is_relative_to(self.config.app_dir):
            raise HarnessError(f"the app imports phoenix_apikeys from {module}")
        if (read, write) != ("replica", "default"):
            raise HarnessError(f"reads go to {read!r} and writes to {write!r}")

    def start_workers(self, phase: str) -> None:
        """One gunicorn master with one sync worker per port: each probe names its worker."""
        for worker in WORKERS:
            log = (self.workdir / f"gunicorn-{phase.replace(' ', '-')}-{worker}.log").open("wb")
            self.logs.append(log)
            command = [
                *(sys.executable, "-m", "gunicorn", "example.wsgi", "-w", "1"),
                *("-b", f"{LOOPBACK}:{self.ports[worker]}", "--chdir", str(self.project)),
                *("--timeout", "30", "--graceful-timeout", "3", "--log-level", "warning"),
                *no_control_socket(),
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
        give_up = time.monotonic() + 40
        for worker in WORKERS:
            while fetch(self.ports[worker], "GET", "/api/hello/", None, 2.0) not in (401, 403):
                if time.monotonic() > give_up or any(p.poll() is not None for p in self.servers):
                    raise HarnessError(f"worker {worker} did not come up; see {self.workdir}")
                time.sleep(0.2)

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        """A request to w1 with the admin secret, or as the owner (basic auth) with `auth`."""
        if "auth" not in kwargs:
            kwargs["headers"] = {"Authorization": f"Bearer {self.admin_secret}"}
        try:
            response = requests.request(method, self.url("w1", path), timeout=15, **kwargs)
        except requests.RequestException as error:
            raise HarnessError(f"{method} {path}: {type(error).__name__}") from None
        if response.status_code != expect:
            raise HarnessError(f"{method} {path}: {response.status_code}, expected {expect}")
        return response.json()["data"] if response.content else None

    def change(self, name: str, seeded: tuple[str, str] | None) -> tuple[dict[str, str], Rows]:
        """Make the case's change; the keys to probe afterwards, and the rows it touched."""
        change, kind, _ = CASES[name]
        table = self.tables[kind]
        owner = {"auth": (OWNER, self.owner_password)} if kind == "user" else {}
        if seeded is None:
            data = self.call(
                "POST", f"/v1/{kind}/api_keys", 201, json={"data": {"name": name}}, **owner
            )
            return {"new": data["key"]}, [(table, pk_of(data["id"]), True)]
        plaintext, key_id = seeded
        gone = (table, pk_of(key_id), False)
        if change == "rotate":
            body = {"data": {"grace_period": 0}}
            data = self.call(
                "POST", f"/v1/{kind}/api_keys/{key_id}/rotate", 201, json=body, **owner
            )
            return {"new": data["key"], "old": plaintext}, [gone, (table, pk_of(data["id"]), True)]
        if name.endswith("-rest"):
            self.call("DELETE", f"/v1/{kind}/api_keys/{key_id}", 204)
        else:
            self.manage("revoke_api_key", key_id)
        return {"old": plaintext}, [gone]

    def probe(self, case: Case, keys: dict[str, str], sweep: bool = False) -> None:
        """GET /api/hello/ on every worker with each key, each from a client address of its own."""
        for worker in WORKERS:
            for label, key in keys.items():
                sent = time.monotonic()
                status = fetch(self.ports[worker], "GET", "/api/hello/", key, 5.0, source())
                case.probes.append(Probe(label, sent - case.done, status, sweep))

    def applied(self, where: psycopg.Connection[Any], rows: Rows) -> bool:
        for table, pk, exists in rows:
            query = sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(table))
            if (where.execute(query, (pk,)).fetchone() is not None) != exists:
                return False
        return True

    def run_case(self, name: str, phase: str, trial: int) -> Case:
        case = Case(name, phase, trial)
        seeded = self.seeded.get(f"{phase}/{name}/{trial}")
        try:
            with (
                self.replica.connect(self.config.database) as replica,
                psycopg.connect(self.config.database_url, autocommit=True) as primary,
            ):
                if seeded:  # the key works on every worker (and sits in the cache) beforehand
                    self.probe(case, {"new": seeded[0]})
                    if case.wrong:
                        raise HarnessError(f"the key was refused before the change: {case.wrong}")
                    case.probes.clear()
                case.keys, rows = self.change(name, seeded)
                case.done = time.monotonic()
                if not self.applied(primary, rows):
                    raise HarnessError("the change is not on the primary once it returned")
                case.lagged = not self.applied(replica, rows)
                end = case.done + self.options.delay + self.options.tail
                while (now := time.monotonic()) < end:
                    self.probe(case, case.keys)
                    if case.caught_up is None and self.applied(replica, rows):
                        case.caught_up = time.monotonic() - case.done
                    time.sleep(max(0.0, now + 0.25 - time.monotonic()))
        except (HarnessError, psycopg.Error) as error:
            case.error = str(error)
        return case


SEED_SCRIPT = f"""
import json, os
from django.contrib.auth import get_user_model
from phoenix_apikeys.ids import key_id
from phoenix_apikeys.keys import KeyKind
from phoenix_apikeys.models import SystemKey, UserKey
owner = get_user_model().objects.create_user({OWNER!r}, "owner@example.invalid",
                                             os.environ["REPLICA_OWNER"])
keys = {{}}
for name in json.loads(os.environ["REPLICA_KEYS"]):
    if "-user-" in name:
        key, plaintext = UserKey.objects.create_key(user=owner, name=name)
        keys[name] = [plaintext, key_id(KeyKind("user"), key.pk)]
    else:
        key, plaintext = SystemKey.objects.create_key(name=name)
        keys[name] = [plaintext, key_id(KeyKind("system"), key.pk)]
tables = {{"user": UserKey._meta.db_table, "system": SystemKey._meta.db_table}}
print({JSON_MARKER!r} + json.dumps({{"keys": keys, "tables": tables}}))
"""

OVERLAY_SETTINGS = """# Written by stress/replica.py: this checkout has no replica settings.
from example.settings import *  # noqa: F403
from example.settings import DATABASES, env

if env.str("REPLICA_DATABASE_URL", default=""):
    DATABASES["replica"] = env.db("REPLICA_DATABASE_URL")
    DATABASES["replica"].update(CONN_MAX_AGE=DATABASES["default"]["CONN_MAX_AGE"],
                                CONN_HEALTH_CHECKS=True, TEST={"MIRROR": "default"},
                                OPTIONS=dict(DATABASES["default"].get("OPTIONS", {})))
    DATABASE_ROUTERS = ["replica_routers.PrimaryReplicaRouter"]
"""


# The run and the report -------------------------------------------------------------------------


def execute(h: ReplicaHarness) -> list[Case]:
    say(f"serving {h.config.app_dir}; logs in {h.workdir}")
    h.set_up()
    say(f"[{h.elapsed():5.1f}s] replica on :{h.replica.port}, {h.options.delay:g} s behind")
    cases: list[Case] = []
    for phase, cache_url in PHASES.items():
        h.use(cache_url)
        if cache_url:
            redis.Redis.from_url(cache_url, socket_timeout=5).flushdb()
        h.start_workers(phase)
        say(f"[{h.elapsed():5.1f}s] {phase}: workers on :{', :'.join(map(str, h.ports.values()))}")
        batch: list[Case] = []
        for trial in range(h.options.trials):  # the cases of a trial run side by side
            with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
                batch += pool.map(h.run_case, CASES, [phase] * len(CASES), [trial] * len(CASES))
        # The sweep: each key once more on every worker, a whole delay after the replica caught
        # up; a stale read the key cache kept would still show here.
        last = max(case.done for case in batch) + 2 * h.options.delay + h.options.tail
        time.sleep(max(0.0, last - time.monotonic()))
        for case in batch:
            if case.keys:
                h.probe(case, case.keys, sweep=True)
            say(f"[{h.elapsed():5.1f}s] {case_line(case)}")
        cases += batch
        h.stop_servers()
    return cases


def case_line(case: Case) -> str:
    lag = "-" if case.caught_up is None else f"{case.caught_up:.1f} s"
    return (
        f"{case.phase:<8} {case.name:<21} #{case.trial + 1}: {len(case.probes):3} probes, "
        f"{len(case.wrong):3} wrong; replica behind: {case.lagged}, caught up after {lag}  "
        f"{f'FAIL: {why(case)}' if case.failed else 'ok'}"
    )


def why(case: Case) -> str:
    if case.error or not case.wrong:
        return case.error or "no probe"
    counts = Counter(p.label for p in case.wrong)
    what = ", ".join(
        f"{n} {label} key answer(s) not {EXPECT[label]}" for label, n in counts.items()
    )
    latest = max(p.at for p in case.wrong) * 1000
    return f"{what}; the latest sent {latest:.0f} ms after the change returned"


HEADERS = (
    "cache|case|trials|probes|new key: 200 / other|old key: 401 / other|latest wrong (ms)|"
    "sweep wrong|replica behind|caught up (s)|result"
).split("|")


def rows(cases: list[Case]) -> list[list[str]]:
    out = []
    for phase, name in itertools.product(PHASES, CASES):
        group = [c for c in cases if (c.phase, c.name) == (phase, name)]
        probes = [p for c in group for p in c.probes]
        split = {}
        for label, expected in EXPECT.items():
            mine = [p.status for p in probes if p.label == label]
            right = mine.count(expected)
            split[label] = f"{right} / {len(mine) - right}" if mine else "-"
        wrong = [p for c in group for p in c.wrong]
        caught = [c.caught_up for c in group if c.caught_up is not None]
        failed = sum(c.failed for c in group)
        out.append(
            [
                phase,
                name,
                str(len(group)),
                str(len(probes)),
                split["new"],
                split["old"],
                f"{max(p.at for p in wrong) * 1000:.0f}" if wrong else "-",
                f"{sum(p.sweep for p in wrong)} / {sum(p.sweep for p in probes)}",
                f"{sum(bool(c.lagged) for c in group)} / {len(group)}",
                f"{min(caught):.1f}-{max(caught):.1f}" if caught else "-",
                f"FAIL ({failed}/{len(group)})" if failed else "ok",
            ]
        )
    return out


def markdown(h: ReplicaHarness, cases: list[Case], failures: list[str]) -> str:
    statuses = format_statuses(Counter(p.status for c in cases for p in c.probes))
    verdict = (
        f"**Failed**: {sum(c.failed for c in cases)} of {len(cases)} cases.\n\n"
        + "\n".join(f"- {failure}" for failure in failures)
        if failures
        else "**Passed**: from the moment each change returned, every new key answered 200 and "
        "every revoked or replaced key 401 on every worker, while the replica had not applied it."
    )
    with psycopg.connect(PG_ADMIN_URL, connect_timeout=10) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"""## Read replica: keys are decided on the primary

With a database router that sends reads to a replica, can a lagging replica decide whether a
key works? `stress/replica.py` starts a PostgreSQL streaming replica of the cluster that applies
each commit {h.options.delay:g} s late (`recovery_min_apply_delay`) and serves the example project
with `REPLICA_DATABASE_URL` set (`example.routers.PrimaryReplicaRouter`: reads to the replica,
writes and migrations to the primary), on four gunicorn masters of one sync worker each, with no
key cache and then with Redis. Per case a key is created, revoked or rotated (grace period 0);
from the moment that returned until {h.options.delay + h.options.tail:g} s later each worker is
asked `GET /api/hello/` with each key involved every 0.25 s, and once more at the end of the
phase (the sweep, a whole delay after the replica caught up): a new key must answer 200, a
revoked or replaced one 401, every time. The replica is queried alongside: "replica behind" is
a change it had not applied when the change returned, "caught up" when it had.

{verdict}

- Command: `python stress/replica.py {" ".join(h.options.argv)}`
- Date: {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}; wall time {h.elapsed():.0f} s;
  code: {code_version(h.config.app_dir)}; PostgreSQL {str(row[0] if row else "?").split()[0]}
- Every probe's status: {statuses}

{markdown_table(HEADERS, rows(cases))}

{chr(10).join(f"- `{name}`: {how}" for name, (_, _, how) in CASES.items())}
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 trial per case and cache (CI)")
    parser.add_argument("--trials", type=int, help="trials per case and cache (default 1 quick, 3)")
    parser.add_argument("--delay", type=float, default=3.0, help="replica apply delay, seconds")
    parser.add_argument("--app-dir", type=Path, default=REPO, help="checkout to serve")
    parser.add_argument("--database", default="phoenix_replica", help="database on the primary")
    parser.add_argument("--budget", type=int, help="hard deadline in seconds")
    parser.add_argument("--write", type=Path, help="write its part of this page (Markdown)")
    options = parser.parse_args(argv)
    options.trials = options.trials or (1 if options.quick else 3)
    if not 1 <= options.trials <= 10 or not 0.5 <= options.delay <= 30:
        parser.error("--trials is 1-10 and --delay 0.5-30 seconds")
    if not options.database.startswith("phoenix_") or not options.database.isidentifier():
        parser.error("--database: an identifier starting with phoenix_")
    options.tail = 1.0 if options.quick else 2.0
    per_phase = options.trials * (options.delay + options.tail + 8) + 2 * options.delay + 10
    options.budget = options.budget or int(40 + len(PHASES) * per_phase)
    options.app_dir = options.app_dir.resolve()
    options.argv = argv
    return options


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    harness = ReplicaHarness(options)
    keep_logs = True
    try:
        with deadline(options.budget):
            cases = execute(harness)
            failures = [
                f"{c.phase} {c.name} trial {c.trial + 1}: {why(c)}" for c in cases if c.failed
            ]
            if tracebacks := harness.log_tracebacks():
                failures.append(f"{tracebacks} traceback(s) in the gunicorn logs")
            say("\n" + text_table(HEADERS, rows(cases)))
            for failure in failures:
                say(f"FAILURE: {failure}")
            if not failures and not all(c.lagged and c.caught_up for c in cases):
                raise HarnessError("the replica was not behind in every case: nothing was shown")
            say(f"{'FAILED' if failures else 'PASSED'} in {harness.elapsed():.1f} s")
            if options.write:
                text = markdown(harness, cases, failures)
                put_section(options.write, "replica", redact(text))
                say(f"wrote its part of {options.write}")
            keep_logs = bool(failures)
            return 1 if failures else 0
    except (HarnessError, psycopg.Error, redis.RedisError, requests.RequestException) as error:
        say(f"HARNESS ERROR: {type(error).__name__}: {redact(str(error))}")
        return 2
    except Deadline as error:
        say(f"ABORTED: {error}")
        return 3
    except KeyboardInterrupt:
        say("INTERRUPTED")
        return 130
    finally:
        harness.stop_servers()
        harness.replica.stop()
        with contextlib.suppress(psycopg.Error, OSError):
            harness.access.restore()
        if keep_logs:
            say(f"logs kept in {harness.workdir}")
        else:
            shutil.rmtree(harness.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
