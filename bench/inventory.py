#!/usr/bin/env python3
"""Inventory size: is one user's key list as fast and as small at 10,000 keys as at 10?

    python bench/inventory.py                               # 10, 100, 1,000, 10,000 keys
    python bench/inventory.py --quick                       # 10 and 1,000 keys, fewer rounds
    python bench/inventory.py --write docs/performance.md   # also (re)write its section there

Times ``GET /v1/user/api_keys`` (the owner's key as ``Bearer``) and the admin change page of
that user (a superuser's session) with Django's test Client, in-process, on SQLite (a temporary
file) and on PostgreSQL when reachable: DATABASE_URL if its database name contains "bench", else
PG_URL (dropped and re-created). One child process per database, settings
benchsite.inventory_settings. Needs the project's virtualenv (Django, DRF, environ, psycopg).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG_URL = "postgres://postgres@127.0.0.1:5432/phoenix_bench_inventory"
REAL_KEYS = 3  # made by create_key (the last authenticates the API calls); the rest bulk-inserted
BEGIN = "<!-- inventory-size: begin (python bench/inventory.py --write; replaced as a whole) -->"
END = "<!-- inventory-size: end -->"
PAGES = {
    "api": "`GET /v1/user/api_keys` (default limit 100)",
    "api10": "`GET /v1/user/api_keys?limit=10`",
    "admin": "admin user change page (newest 20)",
}
HERE = Path(__file__).resolve().parent


# --- child: one database, one process ---------------------------------------------------------


def seed(n: int) -> tuple[Any, str]:
    """A user with ``n`` keys: older ones bulk-inserted, then REAL_KEYS made by create_key."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from phoenix_apikeys.models import UserKey

    owner = get_user_model().objects.create_user(f"owner-{n}", password="bench")
    bulk, now = n - REAL_KEYS, timezone.now()
    UserKey.objects.bulk_create(
        (
            UserKey(
                user=owner,
                name=f"bulk {i}",
                digest=secrets.token_hex(32),
                hint=secrets.token_hex(2),
                created_at=now - datetime.timedelta(seconds=bulk - i),
            )
            for i in range(bulk)
        ),
        batch_size=2000,
    )
    for i in range(REAL_KEYS):
        _, plaintext = UserKey.objects.create_key(user=owner, name=f"real {i}")
    assert UserKey.objects.filter(user=owner).count() == n
    return owner, plaintext


def probe(case: dict[str, Any]) -> dict[str, Any]:
    """Warm the case up, then one request under CaptureQueriesContext: queries, bytes, rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        case["client"].get(case["path"])
    with CaptureQueriesContext(connection) as queries:
        response = case["client"].get(case["path"])
    assert response.status_code == 200, (case["path"], response.status_code)
    if case["page"] == "admin":  # the inline's rows: its formset's TOTAL_FORMS
        found = re.search(rb'name="phoenix_api_keys-TOTAL_FORMS" value="(\d+)"', response.content)
        rows = int(found.group(1)) if found else -1
    else:
        rows = len(response.json()["data"])
        assert rows == min(case["keys"], 10 if case["page"] == "api10" else 100), rows
    return {"bytes": len(response.content), "queries": len(queries), "rows": rows}


def measure(cases: list[dict[str, Any]], rounds: int, batch: int) -> None:
    """Interleaved rounds (shuffled order), so drift and neighbours' load hit every case alike."""
    for case in cases:
        case["samples"] = []
    for round_number in range(rounds):
        order = cases[:]
        random.Random(round_number).shuffle(order)
        for case in order:
            client, path, samples = case["client"], case["path"], case["samples"]
            client.get(path)  # one warm-up request per batch
            gc.collect()
            gc.disable()
            try:
                for _ in range(batch):
                    started = time.perf_counter_ns()
                    client.get(path)
                    samples.append(time.perf_counter_ns() - started)
            finally:
                gc.enable()
    for case in cases:
        q1, median, q3 = statistics.quantiles(case.pop("samples"), n=4, method="inclusive")
        case.update(median=median / 1e6, p25=q1 / 1e6, p75=q3 / 1e6)
        del case["client"]


def child(sizes: list[int], rounds: int, batch: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    call_command("migrate", verbosity=0)
    User = get_user_model()
    superuser = User.objects.create_superuser("bench-admin", "admin@example.com", "bench")
    change = f"admin:{User._meta.app_label}_{User._meta.model_name}_change"
    cases = []
    for n in sizes:  # one user per key count, all in the same tables
        owner, plaintext = seed(n)
        api, staff = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}"), Client()
        staff.force_login(superuser)
        paths = {"api": "/v1/user/api_keys", "api10": "/v1/user/api_keys?limit=10"}
        paths["admin"] = reverse(change, args=[owner.pk])
        for page, path in paths.items():
            client = staff if page == "admin" else api
            cases.append({"keys": n, "page": page, "path": path, "client": client})
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
            cursor.execute("SHOW server_version")
            version = "PostgreSQL " + cursor.fetchone()[0].split()[0]
        else:
            version = f"SQLite {connection.Database.sqlite_version}"
    for case in cases:
        case.update(probe(case))
    measure(cases, rounds, batch)
    print(json.dumps({"vendor": connection.vendor, "version": version, "cases": cases}))


# --- parent: run each database, print the table, write the section ----------------------------


def postgres_url() -> str | None:
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not (url.startswith("postgres") and "bench" in url.rsplit("/", 1)[-1]):
        url = PG_URL  # never drop a database that is not a bench's own
    server, name = url.rsplit("/", 1)
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        print(f"[inventory] PostgreSQL unreachable, skipped: {error}", file=sys.stderr)
        return None
    return url


def run_child(url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", f"--sizes={args.sizes}"]
    command += [f"--rounds={args.rounds}", f"--batch={args.batch}"]
    env = {**os.environ, "PYTHONPATH": str(HERE), "INVENTORY_DATABASE_URL": url}
    env["DJANGO_SETTINGS_MODULE"] = "benchsite.inventory_settings"
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=900)
    sys.stderr.write(done.stderr)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def table(results: list[dict[str, Any]], sizes: list[int]) -> list[str]:
    small = f"{sizes[0]:,}"
    out = [f"| database | page | keys | rows shown | median ms | p25–p75 ms | time ÷ {small} keys "]
    out[0] += "| time ÷ first full page | bytes | queries |"
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        for page, label in PAGES.items():
            rows = [c for c in result["cases"] if c["page"] == page]
            for c in rows:
                # The fewest keys whose page is as full as this one: same page size, more keys.
                full = next(f for f in rows if f["rows"] == c["rows"])
                same = f"{c['median'] / full['median']:.2f} × (÷ {full['keys']:,})"
                ratio = f"{c['median'] / rows[0]['median']:.2f} ×"
                out.append(
                    f"| {result['vendor']} | {label} | {c['keys']:,} | {c['rows']} "
                    f"| {c['median']:.2f} | {c['p25']:.2f}–{c['p75']:.2f} "
                    f"| {f'**{ratio}**' if c is rows[-1] else ratio} "
                    f"| {'-' if full is c else same} "
                    f"| {c['bytes']:,} | {c['queries']} |"
                )
    return out


def section(results: list[dict[str, Any]], args: argparse.Namespace, took: float) -> str:
    import django
    import rest_framework

    sizes = [int(s) for s in args.sizes.split(",")]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    versions = [f"Python {platform.python_version()}", f"Django {django.__version__}"]
    versions += [f"DRF {rest_framework.VERSION}", *(r["version"] for r in results)]
    return f"""## Inventory size

Written by `python bench/inventory.py {" ".join(sys.argv[1:])}` on {when} UTC ({took:.0f} s).
`bench/run.py` rewrites this whole file: run this script again after it.

- Machine: {platform.system()} {platform.release()}, {os.cpu_count()} cores, shared with other
  jobs and noisy: read the ratios ({sizes[-1]:,} keys ÷ {sizes[0]:,}, in bold), not single
  figures. {", ".join(versions)}.
- Method: one user per key count, all in the same tables (seeded smallest first, so a user's
  keys are all older than a larger user's); {REAL_KEYS} of each user's keys made by
  `create_key`, the rest bulk-inserted (`MAX_KEYS_PER_USER = None`). Django's test Client
  in-process, persistent connection, key cache off; the API called with one of the owner's keys
  (`Bearer`), the admin page as a superuser (session). Each case timed in {args.rounds}
  interleaved, shuffled rounds of {args.batch} requests after a warm-up request, GC paused
  within a batch; bytes and queries (`CaptureQueriesContext`) of one warm request.
- A page fills up to its limit (API) or 20 keys (admin inline, which then adds a count for its
  "see all" link), so until then it is smaller and faster: "time ÷ first full page" compares
  pages showing as many keys.

{chr(10).join(table(results, sizes))}
"""


def write(path: Path, text: str) -> None:
    """Replace the section between BEGIN and END, or append it; the rest is left as it was."""
    doc = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text.strip()}\n{END}\n"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        doc = head + block + ("\n" + tail if tail else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 and 1,000 keys, 4 rounds of 3")
    parser.add_argument("--sizes", default="10,100,1000,10000", help="ascending key counts")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help="write the section there")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.batch = "10,1000", 4, 3
    if args.child:
        return child([int(s) for s in args.sizes.split(",")], args.rounds, args.batch)
    started, results = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="phoenix-inventory-") as folder:
        for db in args.db.split(","):
            url = f"sqlite:///{folder}/inventory.db" if db == "sqlite" else postgres_url()
            if url:
                print(f"[inventory] {db}: {args.sizes} keys", file=sys.stderr, flush=True)
                results.append(run_child(url, args))
    took = time.perf_counter() - started
    text = section(results, args, took)
    print(text)
    if args.write:
        write(args.write, text)
        print(f"[inventory] wrote its section in {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
