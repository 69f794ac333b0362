"""Runs inside the bench's own environment (see run.py): seed, time, count, profile.

One process per database. Every case is the same trivial DRF view through one scheme, called
through Django's WSGI handler; cases are timed in interleaved rounds so drift and neighbours'
load fall on all of them alike. Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")

import django  # noqa: E402

WRITES = ("INSERT", "UPDATE", "DELETE")
CACHE_MODES = {"off": None, "locmem": "locmem", "redis": "redis"}
# The scoped key is timed where its path differs from the unscoped one's: the valid key, with
# the cache off and with Redis (a refused local-memory cache is the "off" path again).
SCOPED_CACHE_MODES = ("off", "redis")
SCOPED_PERMISSION = "auth.view_group"
SCOPES = ["read", SCOPED_PERMISSION]
# Keys of the same owner with one restriction each, none of which refuses during a run: the
# request (127.0.0.1) is in the last of a few networks; the rate limit and the uses are out of
# reach. Timed for a valid key where the scoped key is. With the Redis cache the rate limit
# counts in Redis too (THROTTLE_CACHE_ALIAS), with it off in the bench's local-memory default.
RESTRICTED = {
    "networks": (
        "phoenix user key + allowed networks",
        {
            "allowed_networks": [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "2001:db8::/32",
                "127.0.0.0/8",
            ]
        },
    ),
    "rate_limit": (
        "phoenix user key + rate limit",
        {"rate_limit": {"requests": 10**9, "per": 3600}},
    ),
    "uses": ("phoenix user key + remaining uses", {"remaining_uses": 10**12}),
}


def alias_for(size: int) -> str:
    from django.conf import settings

    return "default" if size == settings.BENCH_SIZES[0] else f"keys_{size}"


def prepare_databases() -> None:
    from django.conf import settings

    for db in settings.DATABASES.values():
        if db["ENGINE"].endswith("sqlite3"):
            path = Path(db["NAME"])
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            continue
        import psycopg

        name = db["NAME"]
        assert name.startswith("wt_bench"), "the bench only ever drops its own databases"
        dsn = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for alias in settings.DATABASES:
        call_command("migrate", database=alias, verbosity=0)
    from django.core.cache import caches

    caches["redis"].clear()  # the bench's own Redis db: nothing from an earlier run survives


# --- seeding -----------------------------------------------------------------------------------


def _hex(n: int) -> str:
    return secrets.token_hex(n // 2 + 1)[:n]


def seed_to(total: int, batch: int = 5000) -> float:
    """Bring every scheme's table to ``total`` filler rows with bulk inserts; return seconds."""
    from django.contrib.auth.models import User
    from django.db import connections, router
    from django.utils import timezone
    from knox.models import AuthToken
    from rest_framework.authtoken.models import Token
    from rest_framework_api_key.models import APIKey

    from phoenix_apikeys.models import SystemKey, UserKey, system_user

    started = time.perf_counter()
    now = timezone.now()
    system = system_user()
    have = User.objects.filter(username__startswith="filler").count()
    for start in range(have, total, batch):
        stop = min(total, start + batch)
        users = User.objects.bulk_create(
            [User(username=f"filler{i}", password="!") for i in range(start, stop)]
        )
        Token.objects.bulk_create([Token(key=_hex(40), user=user, created=now) for user in users])
        AuthToken.objects.bulk_create(
            [
                AuthToken(
                    digest=_hex(128),
                    token_key=_hex(15),
                    user=user,
                    created=now,
                    expiry=now + timedelta(days=3650),
                )
                for user in users
            ]
        )
        APIKey.objects.bulk_create(
            [
                # Unique 8-character prefixes; a random real key's prefix mixes in letters.
                APIKey(id=f"{p}.filler", prefix=p, hashed_key="x", name="filler")
                for p in (f"f{i:07d}" for i in range(start, stop))
            ]
        )
        UserKey.objects.bulk_create(
            [UserKey(name="filler", digest=_hex(64), hint="xxxx", user=user) for user in users]
        )
        SystemKey.objects.bulk_create(
            [SystemKey(name="filler", digest=_hex(64), hint="xxxx", user=system) for _ in users]
        )
    database = connections[router.db_for_write(User)]
    if database.vendor == "postgresql":
        with database.cursor() as cursor:
            cursor.execute("ANALYZE")
    return time.perf_counter() - started


# --- credentials and cases ---------------------------------------------------------------------


def make_credentials() -> dict[str, dict[str, str]]:
    """One real credential per scheme and state, made through each library's own API."""
    from django.contrib.auth.models import Permission, User
    from django.utils import timezone
    from knox.models import AuthToken
    from rest_framework.authtoken.models import Token
    from rest_framework_api_key.models import APIKey

    from phoenix_apikeys.keys import generate_key
    from phoenix_apikeys.models import SystemKey, UserKey

    past = timezone.now() - timedelta(days=1)
    owner = User.objects.create(username="bench-owner")
    app_label, codename = SCOPED_PERMISSION.split(".")
    owner.user_permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    token = Token.objects.create(user=owner)
    _, knox_token = AuthToken.objects.create(user=owner)
    _, api_key = APIKey.objects.create_key(name="bench")
    expired_api_key_obj, expired_api_key = APIKey.objects.create_key(name="expired")
    APIKey.objects.filter(pk=expired_api_key_obj.pk).update(expiry_date=past)

    def phoenix(model: Any, **fields: Any) -> tuple[str, str]:
        _, valid = model.objects.create_key(name="bench", **fields)
        expired_key, expired = model.objects.create_key(name="expired", **fields)
        model.objects.filter(pk=expired_key.pk).update(expires_at=past)
        return valid, expired

    user_valid, user_expired = phoenix(UserKey, user=owner)
    system_valid, system_expired = phoenix(SystemKey)
    # The same owner's key, narrowed: read-only (the bench's view is a GET) and one permission
    # the owner holds. Verification presents the owner wrapped in a ScopedUser.
    _, scoped_valid = UserKey.objects.create_key(name="scoped", user=owner, scopes=SCOPES)
    restricted = {
        kind: {"valid": f"Bearer {UserKey.objects.create_key(name=kind, user=owner, **fields)[1]}"}
        for kind, (_, fields) in RESTRICTED.items()
    }

    def bad_checksum(key: str) -> str:
        return key[:-1] + ("A" if key[-1] != "A" else "B")

    garbage = "garbage-credential"
    return {
        "drf_token": {
            "valid": f"Token {token.key}",
            "unknown": f"Token {_hex(40)}",
            "malformed": f"Token {garbage}",
        },
        "knox": {
            "valid": f"Token {knox_token}",
            "unknown": f"Token {_hex(64)}",
            "malformed": f"Token {garbage}",
        },
        "api_key": {
            "valid": f"Api-Key {api_key}",
            "unknown": f"Api-Key {_hex(8)}.{_hex(32)}",
            "expired": f"Api-Key {expired_api_key}",
            "malformed": f"Api-Key {garbage}",
        },
        "user_key": {
            "valid": f"Bearer {user_valid}",
            "unknown": f"Bearer {generate_key('phxu_')}",
            "expired": f"Bearer {user_expired}",
            "malformed": f"Bearer {bad_checksum(user_valid)}",
        },
        "scoped_user_key": {"valid": f"Bearer {scoped_valid}"},
        **restricted,
        "system_key": {
            "valid": f"Bearer {system_valid}",
            "unknown": f"Bearer {generate_key('phxs_')}",
            "expired": f"Bearer {system_expired}",
            "malformed": f"Bearer {bad_checksum(system_valid)}",
        },
        "admin_secret": {
            "valid": "Bearer bench-only-admin-secret-9876543210zyxwvuts",
            "unknown": "Bearer bench-only-wrong-secret-9876543210zyxwvuts",
        },
    }


def make_cases(creds: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    cases = [
        {"scheme": "no auth (baseline)", "view": "none", "cache": "-", "credential": "-"},
        {"scheme": "floor: DRF 401", "view": "floor_401", "cache": "-", "credential": "malformed"},
        {"scheme": "floor: SQL join", "view": "floor_sql", "cache": "off", "credential": "valid"},
        {
            "scheme": "floor: cache get",
            "view": "floor_cache",
            "cache": "locmem",
            "credential": "valid",
        },
        {
            "scheme": "floor: cache get",
            "view": "floor_redis",
            "cache": "redis",
            "credential": "valid",
        },
        {
            "scheme": "floor: memory",
            "view": "floor_memory",
            "cache": "redis",
            "credential": "valid",
        },
    ]
    for case in cases[2:]:
        case["header"] = creds["user_key"]["valid"]
    cases[1]["header"] = "Bearer garbage"
    peers = {"drf_token": "DRF token", "knox": "knox", "api_key": "drf-api-key"}
    for view, name in peers.items():
        for credential, header in creds[view].items():
            cases.append(
                {
                    "scheme": name,
                    "view": view,
                    "cache": "-",
                    "credential": credential,
                    "header": header,
                    "peer": True,
                }
            )
    for kind, name, modes in (
        ("user_key", "phoenix user key", tuple(CACHE_MODES)),
        ("scoped_user_key", "phoenix scoped user key", SCOPED_CACHE_MODES),
        ("system_key", "phoenix system key", tuple(CACHE_MODES)),
        ("admin_secret", "phoenix admin secret", tuple(CACHE_MODES)),
        *((kind, name, SCOPED_CACHE_MODES) for kind, (name, _) in RESTRICTED.items()),
    ):
        for cache in modes:
            for credential, header in creds[kind].items():
                cases.append(
                    {
                        "scheme": name,
                        "view": "phoenix",
                        "cache": cache,
                        "credential": credential,
                        "header": header,
                        "throttle": "redis" if kind == "rate_limit" and cache == "redis" else None,
                    }
                )
    return cases


# --- calling the view --------------------------------------------------------------------------


class Caller:
    """Calls the WSGI application the way a server would, minus the socket."""

    def __init__(self) -> None:
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import RequestFactory

        self.handler = WSGIHandler()
        self.factory = RequestFactory()
        self.status = ""

    def environ(self, case: dict[str, Any]) -> dict[str, Any]:
        extra = {"HTTP_AUTHORIZATION": case["header"]} if case.get("header") else {}
        environ = self.factory._base_environ(
            PATH_INFO=f"/{case['view']}/", REQUEST_METHOD="GET", **extra
        )
        environ["wsgi.input"] = io.BytesIO(b"")
        return environ

    def _start_response(self, status: str, headers: Any, exc_info: Any = None) -> None:
        self.status = status

    def call(self, environ: dict[str, Any]) -> None:
        response = self.handler(environ.copy(), self._start_response)
        b"".join(response)
        response.close()

    def timed(self, environ: dict[str, Any], count: int) -> list[int]:
        clock = time.perf_counter_ns
        handler, start_response = self.handler, self._start_response
        samples = []
        for _ in range(count):
            env = environ.copy()
            started = clock()
            response = handler(env, start_response)
            b"".join(response)
            response.close()
            samples.append(clock() - started)
        return samples


# The bench sends thousands of failing credentials from one address: the throttle keeps
# counting them (its cost is timed) but never reaches its limit, so every case stays itself.
THROTTLE_NEVER_TRIPS = {
    "FAILED_AUTH_LIMIT": 10**12,
    "MAX_KEYS_PER_USER": None,
    "MAX_SYSTEM_KEYS": None,
}


@contextmanager
def cache_mode(case: dict[str, Any]) -> Iterator[None]:
    from django.test.utils import override_settings

    chosen = {"CACHE_ALIAS": CACHE_MODES.get(case["cache"]), **THROTTLE_NEVER_TRIPS}
    if case.get("throttle"):
        chosen["THROTTLE_CACHE_ALIAS"] = case["throttle"]
    with override_settings(PHOENIX_APIKEYS=chosen):
        yield


class Counter:
    def __init__(self) -> None:
        self.queries = 0
        self.writes = 0
        self.round_trips = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        if sql.lstrip().upper().startswith(WRITES):
            self.writes += 1
        return execute(sql, params, many, context)

    @contextmanager
    def redis(self) -> Iterator[None]:
        """Count Redis round trips made by this thread: each send waits for its replies (a
        pipeline is one send); the key memory's listener thread is not counted."""
        from redis.connection import Connection

        send, thread = Connection.send_packed_command, threading.get_ident()

        def counted(connection: Any, *args: Any, **kwargs: Any) -> Any:
            self.round_trips += threading.get_ident() == thread
            return send(connection, *args, **kwargs)

        Connection.send_packed_command = counted  # type: ignore[method-assign]
        try:
            yield
        finally:
            Connection.send_packed_command = send  # type: ignore[method-assign]


def count(caller: Caller, case: dict[str, Any], requests: int) -> dict[str, Any]:
    """Queries, writes and Redis round trips per request once warm (the first use already
    stamped last_used_at)."""
    from benchsite.routing import use_database
    from django.db import connections

    environ = caller.environ(case)
    counter = Counter()
    with use_database(case["alias"]), cache_mode(case):
        for _ in range(3):
            caller.call(environ)
        with connections[case["alias"]].execute_wrapper(counter), counter.redis():
            for _ in range(requests):
                caller.call(environ)
    return {
        "status": int(caller.status.split()[0]),
        "queries": counter.queries / requests,
        "writes": counter.writes / requests,
        "round_trips": counter.round_trips / requests,
    }


def prime_floor_cache(creds: dict[str, dict[str, str]]) -> None:
    """FloorCache reads the entry phoenix_apikeys stores; put it there as a verified key would."""
    from benchsite.settings import PHOENIX_SECRET
    from django.core.cache import caches

    from phoenix_apikeys.keys import digest
    from phoenix_apikeys.models import UserKey

    plaintext = creds["user_key"]["valid"].split()[1]
    key = UserKey.objects.select_related("user").get(digest=digest(plaintext, PHOENIX_SECRET))
    for alias in ("locmem", "redis"):
        caches[alias].set("floor:" + key.digest, key, None)


def start_key_memory() -> None:
    """Start this process's memory of keys and wait for its first heartbeat: the first case
    with the Redis cache would otherwise be counted while it cannot serve yet."""
    from phoenix_apikeys import coherence

    memory = coherence.memory(coherence.redis_url("redis"))
    deadline = time.monotonic() + 5
    while memory is not None and not memory.serving() and time.monotonic() < deadline:
        time.sleep(0.01)


def measure(
    caller: Caller, cases: list[dict[str, Any]], rounds: int, batch: int
) -> dict[int, list[int]]:
    from benchsite.routing import use_database

    samples: dict[int, list[int]] = {i: [] for i in range(len(cases))}
    environs = [caller.environ(case) for case in cases]
    order = list(range(len(cases)))
    for round_number in range(rounds):
        shift = round_number * len(order) // max(rounds, 1)
        random.Random(round_number).shuffle(order)
        for index in order[shift:] + order[:shift]:
            case = cases[index]
            with use_database(case["alias"]), cache_mode(case):
                for _ in range(3):
                    caller.call(environs[index])
                gc.collect()
                gc.disable()
                try:
                    samples[index].extend(caller.timed(environs[index], batch))
                finally:
                    gc.enable()
    return samples


def summarise(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": statistics.median(ordered) / 1000,
        # The spread: half of the requests of a case took between p25 and p75.
        "p25_us": ordered[max(int(len(ordered) * 0.25) - 1, 0)] / 1000,
        "p75_us": ordered[max(int(len(ordered) * 0.75) - 1, 0)] / 1000,
        "p95_us": ordered[int(len(ordered) * 0.95) - 1] / 1000,
        "samples": len(ordered),
    }


# Functions on the valid-key path, reported as a share of the whole request.
PROFILED = [
    ("django/core/handlers/wsgi.py", "__call__", "whole request (WSGI handler)"),
    ("rest_framework/views.py", "dispatch", "DRF dispatch (view + auth + render)"),
    ("phoenix_apikeys/authentication.py", "authenticate", "APIKeyAuthentication.authenticate"),
    ("phoenix_apikeys/verification.py", "verify_credential", "verify_credential"),
    ("phoenix_apikeys/keys.py", "parse_key", "parse_key (prefix, length, alphabet, CRC)"),
    ("phoenix_apikeys/keys.py", "digests", "digests (HMAC-SHA256)"),
    ("phoenix_apikeys/cache.py", "read", "cache.read (entry and generation, one round trip)"),
    ("phoenix_apikeys/throttle.py", "refuse_if_blocked", "throttle check (on a cache miss)"),
    ("phoenix_apikeys/lookup.py", "find_by_digests", "key lookup (find_by_digests)"),
    ("django/db/backends/utils.py", "execute", "cursor.execute (driver + database)"),
    ("phoenix_apikeys/lookup.py", "instance", "row to models: from_db (key and user)"),
    ("phoenix_apikeys/models.py", "is_usable", "is_usable"),
    ("phoenix_apikeys/models.py", "last_used_is_due", "last_used_is_due"),
    ("phoenix_apikeys/verification.py", "principal_of", "principal_of"),
    ("rest_framework/views.py", "finalize_response", "DRF finalize_response"),
]


def profile(caller: Caller, case: dict[str, Any], requests: int) -> dict[str, Any]:
    environ = caller.environ(case)
    with cache_mode(case):
        for _ in range(20):
            caller.call(environ)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            caller.call(environ)
        profiler.disable()
    stats = pstats.Stats(profiler)
    table = stats.stats  # type: ignore[attr-defined]
    rows = []
    whole = None
    for path, function, label in PROFILED:
        for (filename, _, name), (_, ncalls, _, cumtime, _) in table.items():
            if name == function and filename.endswith(path):
                per_request = cumtime / requests * 1e6
                whole = whole or per_request
                rows.append(
                    {
                        "label": label,
                        "calls_per_request": ncalls / requests,
                        "us_per_request": per_request,
                        "share": per_request / whole,
                    }
                )
                break
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    site = str(Path(django.__file__).parent.parent) + "/"
    text = out.getvalue().replace(site, "").replace(str(HERE.parent) + "/", "")
    return {"breakdown": rows, "top": text[text.find("   ncalls") :]}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    from django.db import connection

    names = [
        "Django",
        "djangorestframework",
        "django-rest-knox",
        "djangorestframework-api-key",
        "phoenix-apikeys",
        "psycopg",
        "redis",
    ]
    found = {name: version(name) for name in names}
    found["python"] = platform.python_version()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            found["PostgreSQL"] = cursor.fetchone()[0]
        else:
            cursor.execute("SELECT sqlite_version()")
            found["SQLite"] = cursor.fetchone()[0]
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--count-requests", type=int, default=20)
    parser.add_argument("--profile-requests", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated views to time (default all)")
    parser.add_argument("--serve-setup", action="store_true", help="seed and print a key, stop")
    args = parser.parse_args()
    os.environ["BENCH_SIZES"] = args.sizes
    sizes = [int(size) for size in args.sizes.split(",")]

    prepare_databases()
    setup_django()
    from benchsite.routing import use_database
    from django.db import connection

    if args.serve_setup:
        seed_to(sizes[0])
        print(json.dumps(make_credentials()))
        return

    result: dict[str, Any] = {"db": connection.vendor, "runs": [], "profiles": {}}
    result["versions"] = versions()
    caller = Caller()
    cases: list[dict[str, Any]] = []
    seeded: dict[int, float] = {}
    first_creds: dict[str, dict[str, str]] = {}
    for size in sizes:
        alias = alias_for(size)
        with use_database(alias):
            seeded[size] = seed_to(size)
            creds = make_credentials()
            prime_floor_cache(creds)
        first_creds = first_creds or creds
        for case in make_cases(creds):
            cases.append({**case, "alias": alias, "keys": size})
        print(f"[{connection.vendor}] seeded {size} keys", file=sys.stderr, flush=True)
    if args.only:
        wanted = set(args.only.split(",")) | {"none"}
        cases = [case for case in cases if case["view"] in wanted]
    start_key_memory()
    counts = [count(caller, case, args.count_requests) for case in cases]
    started = time.perf_counter()
    samples = measure(caller, cases, args.rounds, args.batch)
    measured = round(time.perf_counter() - started, 1)
    for size in sizes:
        rows = [
            {**case, **counts[i], **summarise(samples[i]), "header": None}
            for i, case in enumerate(cases)
            if case["keys"] == size
        ]
        result["runs"].append(
            {
                "keys": size,
                "seed_seconds": round(seeded[size], 1),
                "measure_seconds": measured,
                "rows": rows,
            }
        )
    print(f"[{connection.vendor}] measured", file=sys.stderr, flush=True)
    if args.profile_requests:
        for name, case in (
            ("user key, cache off", {"view": "phoenix", "cache": "off"}),
            ("user key, Redis cache", {"view": "phoenix", "cache": "redis"}),
        ):
            full = {**case, "header": first_creds["user_key"]["valid"]}
            result["profiles"][name] = profile(caller, full, args.profile_requests)
    json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
