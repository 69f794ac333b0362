#!/usr/bin/env python3
"""The bench: phoenix_apikeys against the peers, side by side, in one command.

    python bench/run.py                 # 1,000 and 100,000 keys, SQLite and PostgreSQL,
                                        # gunicorn + wrk, writes docs/performance.md
    python bench/run.py --quick --check # the CI gate: query and write counts only matter
    python bench/run.py --million       # also 1,000,000 keys

Needs only the standard library: it builds its own throwaway environment in bench/.venv with
the peers (djangorestframework-api-key, django-rest-knox, DRF's authtoken) and this package,
then runs bench/harness.py in it once per database mode (sqlite, postgres, postgres-prepared).
PostgreSQL on 127.0.0.1:5432 (databases ``wt_bench_run_<key count>[_prepared]``, dropped and
re-created) and Redis db 4 on 127.0.0.1:6379 are expected; wrk for the multi-process part.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"
RESULTS = HERE / "results"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = [
    "-e",
    f"{ROOT}[redis]",
    "djangorestframework-api-key>=3.1",
    "django-rest-knox>=5.1",
    "psycopg[binary]>=3.1",
    "gunicorn>=22",
    "hiredis>=2",  # the C reply parser redis-py uses when present, as production should
]
PEERS = ("DRF token", "knox", "drf-api-key")
SCOPED = "phoenix scoped user key"  # scopes ["read", "auth.view_group"]; valid, cache off/Redis
PHOENIX_KEYS = ("phoenix user key", SCOPED, "phoenix system key")
# The user key with one restriction each (bench/harness.py's RESTRICTED): the queries and writes
# each adds to a valid request (a use is a conditional UPDATE), gated like every other count.
RESTRICTED = {
    "phoenix user key + allowed networks": (0, 0),
    "phoenix user key + rate limit": (0, 0),
    "phoenix user key + remaining uses": (1, 1),
}
# Ratio of overhead to the best peer's: a warm key or admin secret (each process's memory), a
# malformed key, a guess with Redis, the admin secret and valid keys with the cache off (its
# target per database), growth with the key count, and gunicorn throughput.
TARGETS: dict[str, Any] = {
    "warm": 0.15,
    "malformed": 0.15,
    "guess": 1.0,
    "admin off": 1.0,
    "off": {"sqlite": 0.6, "postgres": 0.92, "postgres-prepared": 0.92},
    "growth": 1.1,
    "rps": 0.9,
}
# A per-process cache is refused (a key revoked elsewhere would live on in it): keys configured
# with it are verified in the database, so it costs what "off" costs.
DATABASE_PATH = frozenset({"off", "locmem"})


def kept_section(page: Path, name: str) -> str:
    """The part of ``page`` another script writes between its markers (bench/inventory.py)."""
    found = re.search(
        rf"<!-- {name}: begin.*?<!-- {name}: end -->\n?",
        page.read_text() if page.exists() else "",
        re.S,
    )
    return "\n" + found.group(0) if found else ""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- environment -------------------------------------------------------------------------------


def ensure_environment() -> None:
    """Create bench/.venv once; re-install when this file's requirements change."""
    stamp = VENV / "requirements.sha256"
    wanted = hashlib.sha256(json.dumps(REQUIREMENTS).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PYTHON.exists():
        return
    log("building bench/.venv with the peers")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *REQUIREMENTS], check=True, timeout=900)
    stamp.write_text(wanted)


# --- in-process timings ------------------------------------------------------------------------


def run_harness(db: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        str(PYTHON),
        str(HERE / "harness.py"),
        f"--sizes={args.keys}",
        f"--rounds={args.rounds}",
        f"--batch={args.batch}",
        f"--profile-requests={0 if args.quick else 3000}",
    ]
    env = {**os.environ, "BENCH_DB": db, "PYTHONPATH": str(HERE)}
    log(f"{db}: {args.keys} keys, {args.rounds} rounds of {args.batch} requests per case")
    done = subprocess.run(
        command, env=env, check=True, capture_output=True, text=True, timeout=args.timeout
    )
    sys.stderr.write(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    (RESULTS / f"{db}.json").write_text(done.stdout)
    return result


# --- multi-process: gunicorn + wrk on loopback -------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wrk(url: str, header: str | None, seconds: int, connections: int) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s", url]
    if header:
        command[1:1] = ["-H", f"Authorization: {header}"]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def run_multiprocess(args: argparse.Namespace) -> dict[str, Any]:
    if not shutil.which("wrk"):
        log("wrk is missing (apt-get install wrk); skipping the multi-process part")
        return {}
    env = {**os.environ, "BENCH_DB": "postgres", "PYTHONPATH": str(HERE), "BENCH_SIZES": "100000"}
    setup = subprocess.run(
        [str(PYTHON), str(HERE / "harness.py"), "--sizes=100000", "--serve-setup"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=args.timeout,
    )
    creds = json.loads(setup.stdout)
    port = free_port()
    workers = args.workers
    env["BENCH_CACHE_ALIAS"] = "redis"
    server = subprocess.Popen(
        [
            str(VENV / "bin" / "gunicorn"),
            f"--workers={workers}",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
            "benchsite.wsgi",
        ],
        cwd=HERE,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/none/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        cases = {
            "no auth": ("/none/", None),
            "phoenix user key (Redis cache)": ("/phoenix/", creds["user_key"]["valid"]),
            "floor: memory (HMAC + a dict lookup)": ("/floor_memory/", creds["user_key"]["valid"]),
            "drf-api-key": ("/api_key/", creds["api_key"]["valid"]),
        }
        rates: dict[str, list[float]] = {name: [] for name in cases}
        for path, header in cases.values():  # warm every worker's connections and cache
            wrk(base + path, header, 2, args.connections)
        names = list(cases)
        for round_number in range(args.wrk_rounds):
            shift = round_number % len(names)  # each round starts with the next endpoint
            for name in names[shift:] + names[:shift]:
                path, header = cases[name]
                rates[name].append(wrk(base + path, header, args.wrk_seconds, args.connections))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return {
        "workers": workers,
        "connections": args.connections,
        "seconds": args.wrk_seconds,
        "rounds": args.wrk_rounds,
        "rates": rates,
    }


# --- report ------------------------------------------------------------------------------------


def paired_ratio(rates: list[float], base: list[float]) -> float:
    """The median over rounds of an endpoint's rate over the no-auth rate of the same round:
    the endpoints of a round run back to back, so a slower or faster spell of a shared machine
    falls on both sides of each ratio."""
    return statistics.median(rate / plain for rate, plain in zip(rates, base, strict=True))


def rows_by(run: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["scheme"], r["cache"], r["credential"]): r for r in run["rows"]}


def overheads(run: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    rows = rows_by(run)
    baseline = rows[("no auth (baseline)", "-", "-")]["median_us"]
    return {key: row["median_us"] - baseline for key, row in rows.items()}


def best_peer(over: dict[tuple[str, str, str], float], credential: str) -> tuple[str, float]:
    found = [(over[(p, "-", credential)], p) for p in PEERS if (p, "-", credential) in over]
    value, name = min(found)
    return name, value


def ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else float("nan")


def spread(row: dict[str, Any]) -> str:
    """p25 to p75 of a case's requests; results written before the bench kept them show "-"."""
    if "p25_us" not in row:
        return "-"
    return f"{row['p25_us']:.0f}–{row['p75_us']:.0f}"


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def headline(results: dict[str, Any]) -> tuple[list[str], list[tuple[str, bool]], list[str]]:
    """The targets table, one verdict per target, and a note for every missed target."""
    lines = [
        "| database | keys | case | median µs | p25–p75 µs | overhead µs "
        "| best peer (overhead µs) | ratio | target | floor | queries | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts: list[tuple[str, bool]] = []
    notes: list[str] = []
    for db, result in results.items():
        for run in result["runs"]:
            rows, over = rows_by(run), overheads(run)
            peer_valid = best_peer(over, "valid")
            user, admin = "phoenix user key", "phoenix admin secret"
            checks = [
                (user, "off", "valid", "valid", "floor: SQL join", "off"),
                (SCOPED, "off", "valid", "valid", "floor: SQL join", None),
                ("phoenix system key", "off", "valid", "valid", "floor: SQL join", "off"),
                (user, "redis", "valid", "valid", "floor: memory", "warm"),
                (SCOPED, "redis", "valid", "valid", "floor: memory", None),
                ("phoenix system key", "redis", "valid", "valid", "floor: memory", "warm"),
                (user, "off", "malformed", "malformed", "floor: DRF 401", "malformed"),
                (user, "off", "unknown", "unknown", None, None),
                (user, "redis", "unknown", "unknown", None, "guess"),
                (user, "off", "expired", "expired", None, None),
                (admin, "off", "valid", "valid", None, "admin off"),
                (admin, "redis", "valid", "valid", None, "warm"),
            ]
            for scheme, cache, credential, versus, floor, target in checks:
                if (scheme, cache, credential) not in rows:  # a case older results lack
                    continue
                if isinstance(target, str):
                    target = TARGETS[target]
                if isinstance(target, dict):
                    target = target[db]
                peer, peer_over = best_peer(over, versus) if versus != "expired" else peer_valid
                row = rows[(scheme, cache, credential)]
                value = ratio(over[(scheme, cache, credential)], peer_over)
                warm = cache not in DATABASE_PATH and credential == "valid"
                queries = 0 if credential == "malformed" or warm else 1
                floor_value = float("nan")
                if floor:
                    floor_cache = "-" if floor == "floor: DRF 401" else cache
                    floor_credential = "malformed" if floor == "floor: DRF 401" else "valid"
                    floor_value = ratio(over[(floor, floor_cache, floor_credential)], peer_over)
                met = (target is None or value <= target) and row["queries"] == queries
                verdicts.append((f"{db} {run['keys']} {scheme} {cache} {credential}", met))
                want = f"≤ {target} ×" if target else f"{queries} query" if queries else "0 queries"
                lines.append(
                    f"| {db} | {run['keys']:,} | {scheme}, cache {cache}, {credential} "
                    f"| {row['median_us']:.0f} | {spread(row)} "
                    f"| {over[(scheme, cache, credential)]:.0f} "
                    f"| {peer} ({peer_over:.0f}) | {fmt(value)} × | {want} "
                    f"| {fmt(floor_value) + ' ×' if floor else '-'} "
                    f"| {row['queries']:g} (want {queries}) | {'yes' if met else '**no**'} |"
                )
                if not met:
                    why = (
                        f"the hand-made floor for this step measured {fmt(floor_value)} × in "
                        "the same run" + (", above the target" if floor_value > target else "")
                        if floor and target
                        else "query count differs"
                    )
                    notes.append(
                        f"- {db}, {run['keys']:,} keys, {scheme}, cache {cache}, {credential}: "
                        f"{fmt(value)} × the best peer's overhead against a target of "
                        f"{target} ×; {why}."
                    )
        if len(result["runs"]) > 1:
            first = result["runs"][0]
            for last in result["runs"][1:]:
                for scheme, cache in (("phoenix user key", "off"), ("phoenix user key", "redis")):
                    key = (scheme, cache, "valid")
                    small, big = overheads(first)[key], overheads(last)[key]
                    whole = rows_by(last)[key]["median_us"] / rows_by(first)[key]["median_us"]
                    met = whole <= TARGETS["growth"]
                    verdicts.append((f"{db} growth {last['keys']} {scheme} {cache}", met))
                    lines.append(
                        f"| {db} | {last['keys']:,} vs {first['keys']:,} | {scheme}, cache "
                        f"{cache}, valid: cost at {last['keys']:,} / at {first['keys']:,} "
                        f"| {rows_by(last)[key]['median_us']:.0f} vs "
                        f"{rows_by(first)[key]['median_us']:.0f} | {big:.0f} vs {small:.0f} "
                        f"| - | request {whole:.2f} ×, overhead {fmt(ratio(big, small))} × "
                        f"| ≤ {TARGETS['growth']} × (request) | - | - "
                        f"| {'yes' if met else '**no**'} |"
                    )
                    if not met:
                        notes.append(
                            f"- {db}: {scheme}, cache {cache}: a request at {last['keys']:,} "
                            f"keys took {whole:.2f} × one at {first['keys']:,} keys (target "
                            f"{TARGETS['growth']} ×)."
                        )
    return lines, verdicts, notes


def scoped_table(results: dict[str, Any]) -> list[str]:
    """The scoped key beside the unscoped one of the same owner, same run and key count."""
    lines = [
        "| database | keys | cache | unscoped median µs (p25–p75) | scoped median µs (p25–p75) "
        "| scoped − unscoped µs | scoped / unscoped overhead | queries (unscoped, scoped) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for db, result in results.items():
        for run in result["runs"]:
            rows, over = rows_by(run), overheads(run)
            for cache in ("off", "redis"):
                plain, scoped = ("phoenix user key", cache, "valid"), (SCOPED, cache, "valid")
                if scoped not in rows:  # results written before the bench timed scoped keys
                    continue
                lines.append(
                    f"| {db} | {run['keys']:,} | {cache} "
                    f"| {rows[plain]['median_us']:.0f} ({spread(rows[plain])}) "
                    f"| {rows[scoped]['median_us']:.0f} ({spread(rows[scoped])}) "
                    f"| {rows[scoped]['median_us'] - rows[plain]['median_us']:+.0f} "
                    f"| {fmt(ratio(over[scoped], over[plain]))} × "
                    f"| {rows[plain]['queries']:g}, {rows[scoped]['queries']:g} |"
                )
    return lines


def restricted_table(results: dict[str, Any]) -> list[str]:
    """Each restricted key beside the unrestricted user key of the same owner and run."""
    lines = [
        "| database | keys | cache | restriction | median µs (p25–p75) | overhead µs "
        "| × best peer | unrestricted median µs | extra µs | × unrestricted overhead "
        "| queries/req (unrestricted → restricted) | Redis round trips/req (same) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for db, result in results.items():
        for run in result["runs"]:
            rows, over = rows_by(run), overheads(run)
            _, peer_over = best_peer(over, "valid")
            for (scheme, cache, credential), row in rows.items():
                if scheme not in RESTRICTED:  # results older than restricted keys have none
                    continue
                plain = ("phoenix user key", cache, credential)
                key, was = over[(scheme, cache, credential)], rows[plain]
                trips = [f"{r['round_trips']:g}" if "round_trips" in r else "-" for r in (was, row)]
                lines.append(
                    f"| {db} | {run['keys']:,} | {cache} | {scheme.split(' + ')[1]} "
                    f"| {row['median_us']:.0f} ({spread(row)}) | {key:.0f} "
                    f"| {fmt(ratio(key, peer_over))} × | {was['median_us']:.0f} "
                    f"| {row['median_us'] - was['median_us']:+.0f} "
                    f"| {fmt(ratio(key, over[plain]))} × "
                    f"| {was['queries']:g} → {row['queries']:g} | {trips[0]} → {trips[1]} |"
                )
    return lines


def full_table(db: str, run: dict[str, Any]) -> list[str]:
    over = overheads(run)
    lines = [
        f"### {db}, {run['keys']:,} keys per scheme (seeded in {run['seed_seconds']} s; "
        f"every key count of this database timed together in {run['measure_seconds']} s)",
        "",
        "| scheme | cache | credential | status | median µs | p95 µs | overhead µs "
        "| × best peer | queries/req | writes/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in run["rows"]:
        key = (row["scheme"], row["cache"], row["credential"])
        credential = row["credential"] if row["credential"] != "-" else "valid"
        try:
            _, peer_over = best_peer(over, credential if credential != "expired" else "valid")
        except ValueError:
            peer_over = float("nan")
        lines.append(
            f"| {row['scheme']} | {row['cache']} | {row['credential']} | {row['status']} "
            f"| {row['median_us']:.0f} | {row['p95_us']:.0f} | {over[key]:.0f} "
            f"| {fmt(ratio(over[key], peer_over))} | {row['queries']:g} | {row['writes']:g} |"
        )
    return lines


def gate(results: dict[str, Any]) -> list[str]:
    """Query and write counts: these do not depend on the machine, so CI can hold them."""
    failures = []
    for db, result in results.items():
        for run in result["runs"]:
            for row in run["rows"]:
                scheme, cache, credential = row["scheme"], row["cache"], row["credential"]
                if not scheme.startswith("phoenix"):
                    continue
                is_key = scheme in PHOENIX_KEYS
                queries, writes = RESTRICTED.get(scheme, (0, 0))
                want: dict[str, float] = {"writes": writes}
                if credential == "valid":
                    want["queries"] = queries + (1 if cache in DATABASE_PATH else 0)
                    want["status"] = 200
                elif credential in ("unknown", "expired"):
                    want["queries"] = 1 if is_key else 0
                    want["status"] = 401
                elif credential == "malformed":
                    want["queries"] = 0
                    want["status"] = 401
                for field, expected in want.items():
                    if row[field] != expected:
                        failures.append(
                            f"{db} {run['keys']} keys: {scheme}, cache {cache}, {credential}: "
                            f"{field} {row[field]:g}, expected {expected:g}"
                        )
    return failures


def max_writes(results: dict[str, Any]) -> float:
    """``last_used_at`` writes: a restricted key's own (a use spent) are not counted."""
    return max(
        row["writes"] - RESTRICTED.get(row["scheme"], (0, 0))[1]
        for result in results.values()
        for run in result["runs"]
        for row in run["rows"]
        if row["scheme"].startswith("phoenix")
    )


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores"


EXPLAINED = [
    "## What the valid-key path does, and why it is still correct",
    "",
    "`verify_credential` (the one path for DRF, the middleware and every other entry point): "
    "header → `parse_key` (prefix, length, base62, CRC32 checksum; malformed keys stop here "
    "with no query and no cache access) → HMAC-SHA256 digests (current secret, then "
    "fallbacks) → this process's memory (with Redis: a copy of a key it holds, usable, "
    "unrestricted and with nothing to write, is the answer; the async path answers the same "
    "way on the event loop) → the shared cache, if configured (only verified keys are "
    "stored) → one indexed query joined to the owner → `is_usable` (expiry, disabled, uses "
    "left, owner active) → scopes and restrictions → `last_used_at` at most once per "
    "interval → principal.",
    "",
    "Profiling the foundation's path (cProfile, SQLite, valid key, cache off, commit "
    "acc20de) put about four fifths of `verify_credential` inside the ORM building and "
    "compiling `select_related('user').filter(digest=…).first()` on every request, and "
    "about a twentieth in the database call. So:",
    "",
    "- `phoenix_apikeys/lookup.py` builds the SQL of that query once per model, number of "
    "candidate digests, connection and thread from the models' metadata (`_meta`, "
    "`quote_name`), then executes it with new parameters and builds the key and owner "
    "with `Model.from_db` from the driver's values (datetimes made aware under USE_TZ, "
    "booleans as bool): one query (still seen by `CaptureQueriesContext` and execute "
    "wrappers), any backend, any `AUTH_USER_MODEL`. It rebuilds after any `setting_changed` "
    "and when the connection object differs; a key or user model whose default manager "
    "filters, or with a column of another type than integers, text, booleans and datetimes, "
    "takes one ORM query instead. Fallback secrets still cost one query (`IN`).",
    "- Digests: the HMAC key that `salted_hmac` derives from the secret is computed once per "
    "secret, with the two SHA-256 states of HMAC (RFC 2104) that have taken its padded key; "
    "a request copies those (`hmac.digest` looked the algorithm up in OpenSSL on every call: "
    "inside a request that cost about 11 µs of a warm key's 45; a digest took 1.3 µs in a "
    "tight loop through a copy of an `hmac.HMAC` and its Python wrapper, 0.8 µs this way). "
    "The value is identical (a property test compares it with `salted_hmac`). The floors "
    "digest with the same function.",
    "- Small things on every request, each measured inside a whole request (where code runs "
    "about three times slower than in a tight loop): the cold lookup is a manager method "
    "(through the queryset it built a QuerySet it never ran); the parsed key and the cache "
    "entry are named tuples (a frozen dataclass sets each field through "
    "`object.__setattr__`); a DRF request is asked for a principal only once an entry point "
    "attached one, and the header and method are read from Django's request under it (each "
    "read through DRF's proxy costs a failed attribute lookup first: together about 1.5 µs "
    "in a tight loop); a key's prefix, length and alphabet are checked in one match, and "
    "which of them failed is worked out only for a malformed key; `Invalid API key.` is "
    "translated once per language.",
    "- The warm path (a key this process's memory holds) judges the key once, when memory "
    "keeps it: usable and unrestricted, it may answer alone until its use is due to be "
    "recorded or it expires, so a hit compares one time and copies the key and its owner "
    "(new objects taking copies of their attribute dicts whole: 1.1 µs for both in a tight "
    "loop, `copy.copy` of each object takes 9.5). A restricted key takes "
    "the whole path every time. Memory lookups take no lock, a forked worker resets its "
    "memory at the fork rather than comparing pids on every call, fallback secrets are "
    "digested on a miss only, and a well-formed Authorization header is read in one match.",
    "- The bench serves every case from one route, so URL resolution costs each the same.",
    "- The admin secret's system user is cached with the keys when a cache is configured; "
    "every user save or delete forgets it.",
    "- A cached key whose `last_used_at` was older than the interval (another process had "
    "already stamped it) used to issue a conditional UPDATE on every hit until the entry "
    "expired; the entry is now refreshed after one attempt. The UPDATE condition uses the "
    "same boundary (`<=`) as the check in Python.",
    "",
    "Unchanged: secrets compared only as fixed-length digests (the key through its digest "
    "in a unique index, the admin secret as SHA-256 digests with `constant_time_compare`); "
    "malformed keys rejected before any query; negative results never cached; revocation, "
    "expiry and owner deactivation effective on the next request in every process sharing "
    "the cache (`tests/test_cache.py`, which drives a second real process against the same "
    "PostgreSQL and Redis when the suite runs there, as `.ci/run` does).",
    "",
]


def report(saved: dict[str, Any], args: argparse.Namespace) -> str:
    results, multi = saved["results"], saved["multi"]
    head, verdicts, notes = headline(results)
    versions = next(iter(results.values()))["versions"]
    for result in results.values():
        versions.update(
            {k: v for k, v in result["versions"].items() if k in ("SQLite", "PostgreSQL")}
        )
    out = [
        "# Performance",
        "",
        "<!-- Written by `python bench/run.py`; do not edit by hand. -->",
        "",
        f"Every number below comes from one run of "
        f"`{' '.join(['python bench/run.py', *saved['argv']])}`, started {saved['started']} UTC "
        "and finished "
        f"{saved['finished']} UTC.",
        "",
        f"- Machine: {machine()}; shared with other jobs, so read ratios and medians, not "
        "single figures.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f'- Method: the same trivial DRF view (`{{"hello": "world"}}`, JSON renderer, no '
        "middleware) called through Django's WSGI handler in-process, persistent database "
        "connections, one database per key count (a router sends each case to its own), so "
        f"every case of every key count is timed in the same {saved['rounds']} interleaved "
        f"rounds (shuffled order each round) of {saved['batch']} timed requests per case "
        "after 3 warm-up requests; GC paused inside a batch. Overhead = median minus the "
        "no-auth median of the same run and key count; ratio = overhead / the best peer's "
        "overhead for the same kind of credential. Queries and writes are counted over 20 "
        "further warm requests per case. Redis through django-redis (hiredis parser), db 4 on "
        "loopback. "
        "phoenix_apikeys logs failures to a null handler (the record is still built).",
        "- Floors (hand-made DRF auth classes in `bench/benchsite/views.py`): `floor: DRF 401` "
        "raises AuthenticationFailed at once; `floor: SQL join` HMACs the key, runs one "
        "hand-written join and builds both models with `from_db`; `floor: cache get` HMACs "
        "the key and reads the entry from the local-memory cache (`floor_cache`) or Redis "
        "(`floor_redis`); `floor: memory` HMACs the key and looks it up in a dict of the "
        "process (the floor of a key held in the process's memory, the coherent cache's warm "
        "path); no converters and no checks anywhere. Each reads the header from Django's "
        "request under DRF's and HMACs with `phoenix_apikeys.keys.digest`.",
        "- Databases: `sqlite` is a file database; `postgres` is Django's default PostgreSQL "
        "configuration (client-side binding, no prepared statements); `postgres-prepared` is "
        "the same server with Django's opt-in `OPTIONS = {'server_side_binding': True, "
        "'prepare_threshold': 5}`, where psycopg prepares every repeated statement, the "
        "peers' ORM queries included.",
        "- Peers: DRF `TokenAuthentication` (`Token <key>`), knox `TokenAuthentication`, "
        "djangorestframework-api-key's `HasAPIKey` permission (no authentication class, so a "
        "refusal is 403); knox deletes an expired token on first sight, so knox has no "
        "expired row, and DRF tokens do not expire. A peer's malformed credential is garbage "
        "text: none of them can reject it without a query.",
        f'- Scoped key (`{SCOPED}`): a key of the same owner made with `scopes=["read", '
        '"auth.view_group"]` (the owner is granted that permission when seeding); the view '
        "is a GET, so `read` lets it through, and verification presents the owner wrapped in a "
        "`ScopedUser`. Timed for a valid key with the cache off and with Redis.",
        "- Restricted keys: keys of the same owner with one restriction each, none of which "
        "refuses during the run: `allowed_networks` of five (IPv4 and IPv6; the request, "
        "127.0.0.1, is in the last), a `rate_limit` of 10⁹ requests an hour (counted in "
        "THROTTLE_CACHE_ALIAS: Redis in the Redis case, the bench's local-memory default "
        "cache with the cache off) and `remaining_uses` of 10¹² (a conditional UPDATE a "
        "request). Timed for a valid key with the cache off and with Redis. Redis round trips "
        "are counted over the same 20 requests as queries, in the requesting thread (a "
        "pipeline is one).",
        "",
        *EXPLAINED,
        "## Targets",
        "",
        *head,
        "",
        f"Targets met: {sum(ok for _, ok in verdicts)} of {len(verdicts)}.",
        "",
        f"`last_used_at` writes per warm request, every phoenix_apikeys case of this run: at "
        f"most {max_writes(results):g} (the first use of each key, during warm-up, is the one "
        "write of its interval; `tests/test_cache.py` holds the per-interval bound under "
        "sustained use). Query counts for every case are in the tables below and are what "
        "`--check` gates in CI.",
        "",
        *(["Missed, with the floor measured beside them:", "", *notes, ""] if notes else []),
        "## Scoped keys",
        "",
        "The scoped user key beside the unscoped user key of the same owner (valid key; the "
        "medians and spreads are those of the tables below). The query count must be the same: "
        "scopes travel on the key row, through the one query and the cache.",
        "",
        *scoped_table(results),
        "",
        "## Restricted keys",
        "",
        "Each restricted key beside the unrestricted user key of the same owner (valid key, "
        "same run and key count): extra µs is the difference of the medians, and the "
        "restriction's overhead is also given as a multiple of the unrestricted key's.",
        "",
        *restricted_table(results),
        "",
    ]
    if multi:
        base = multi["rates"]["no auth"]
        out += [
            "## Multi-process: gunicorn + wrk (PostgreSQL, Redis cache, 100,000 keys)",
            "",
            f"{multi['workers']} sync gunicorn workers sharing one Redis cache; wrk with 2 "
            f"threads and {multi['connections']} connections on loopback, "
            f"{multi['rounds']} rounds of {multi['seconds']} s per endpoint, the endpoints of a "
            "round back to back, each round starting with the next endpoint. × no auth is the "
            "median over rounds of the endpoint's rate over the no-auth rate of the same round.",
            "",
            "| endpoint | requests/s (median) | all rounds | × no auth | target |",
            "|---|---|---|---|---|",
        ]
        for name, rates in multi["rates"].items():
            target = f"≥ {TARGETS['rps']} ×" if name.startswith("phoenix") else "-"
            out.append(
                f"| {name} | {statistics.median(rates):.0f} "
                f"| {', '.join(f'{r:.0f}' for r in rates)} "
                f"| {paired_ratio(rates, base):.2f} | {target} |"
            )
        out.append("")
        phoenix = paired_ratio(multi["rates"]["phoenix user key (Redis cache)"], base)
        if phoenix < TARGETS["rps"] and "postgres" in results:
            rows = rows_by(results["postgres"]["runs"][-1])
            floor = rows[("floor: memory", "redis", "valid")]["median_us"]
            ours = rows[("phoenix user key", "redis", "valid")]["median_us"]
            plain = rows[("no auth (baseline)", "-", "-")]["median_us"]
            out += [
                f"Missed: {phoenix:.2f} × against ≥ {TARGETS['rps']} ×. A warm key is "
                "served from each worker's memory (LOCAL_CACHE), with no Redis round trip; "
                "what remains is the Python path (header grammar, checksum, HMAC, a copy of the "
                "key and its owner, expiry, scopes and restrictions) on 2 cores that wrk, "
                "Redis, PostgreSQL and the workers share. In-process in this run: no auth "
                f"{plain:.0f} µs a request, the memory floor {floor:.0f} µs, a warm key "
                f"{ours:.0f} µs.",
                "",
            ]
    out += ["## Every case", ""]
    for db, result in results.items():
        for run in result["runs"]:
            out += [*full_table(db, run), ""]
    for db, result in results.items():
        for name, found in result.get("profiles", {}).items():
            out += [
                f"### Profile: {db}, {name} (cProfile, 3,000 warm requests)",
                "",
                "cProfile inflates every call, so read the shares, not the microseconds.",
                "",
                "| step | calls/request | µs/request (profiled) | share of the request |",
                "|---|---|---|---|",
            ]
            for row in found["breakdown"]:
                out.append(
                    f"| {row['label']} | {row['calls_per_request']:g} "
                    f"| {row['us_per_request']:.1f} | {row['share']:.0%} |"
                )
            out += ["", "<details><summary>top functions by own time</summary>", ""]
            out += ["```", found["top"].strip(), "```", "", "</details>", ""]
    return "\n".join(out) + "\n"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 keys, few rounds, no docs")
    parser.add_argument("--check", action="store_true", help="fail on query/write regressions")
    parser.add_argument("--keys", default="1000,100000", help="comma-separated key counts")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 keys")
    parser.add_argument("--db", default="sqlite,postgres,postgres-prepared")
    # Many short batches: a slow spell of the shared machine then falls on every case alike.
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--no-multiprocess", action="store_true", help="skip gunicorn + wrk")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-seconds", type=int, default=4)
    parser.add_argument("--wrk-rounds", type=int, default=8)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per harness run")
    parser.add_argument("--output", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from bench/results/*.json"
    )
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    if args.quick:
        args.keys, args.rounds, args.batch, args.no_multiprocess = "1000", 2, 10, True
        args.timeout = min(args.timeout, 600)
    if args.million:
        args.keys += ",1000000"
    started = now()
    RESULTS.mkdir(exist_ok=True)
    if args.report_only:
        saved = json.loads((RESULTS / "run.json").read_text())
        results, multi, started = saved["results"], saved["multi"], saved["started"]
    else:
        ensure_environment()
        results = {db: run_harness(db, args) for db in args.db.split(",")}
        multi = {} if args.no_multiprocess else run_multiprocess(args)
        saved = {"results": results, "multi": multi, "started": started, "argv": args.argv}
        saved.update(finished=now(), rounds=args.rounds, batch=args.batch)
        (RESULTS / "run.json").write_text(json.dumps(saved))
    text = report(saved, args)
    target = Path(args.output) if not args.quick else RESULTS / "performance-quick.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + kept_section(target, "inventory-size"))
    log(f"wrote {target}")
    if args.check:
        failures = gate(results)
        for failure in failures:
            print(f"REGRESSION: {failure}", file=sys.stderr)
        if failures:
            return 1
        print("bench check: query and write counts as expected", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
