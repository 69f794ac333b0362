"""The async verification path against the sync one, warm, in one process.

    python bench/asgi.py            # Redis on 127.0.0.1:6379 (db from BENCH_REDIS_DB, 7), SQLite

Times a valid user key verified warm, each way: ``verify_credential`` (a WSGI worker's path),
``averify_credential`` on an event loop (an ASGI worker's path: process memory, no thread hop),
and ``sync_to_async(verify_credential)`` (what an async path costs that always hops to a
thread). The key cache is Redis with each process's memory (LOCAL_CACHE), as in production.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-asgi-')}/db.sqlite3"
os.environ["CACHE_URL"] = f"redis://127.0.0.1:6379/{os.environ.get('BENCH_REDIS_DB', '7')}"

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from phoenix_apikeys.conf import phoenix_settings  # noqa: E402
from phoenix_apikeys.models import UserKey  # noqa: E402
from phoenix_apikeys.verification import (  # noqa: E402
    _remembered_principal,
    averify_credential,
    verify_credential,
)

ROUNDS, PER_ROUND = 7, 2000


def main() -> None:
    call_command("migrate", verbosity=0)
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": "apikeys", "LOCAL_CACHE": True}
    phoenix_settings.reload()
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user("bench-asgi")
    _key, plaintext = UserKey.objects.create_key(user=owner, name="bench")
    verify_credential(plaintext)  # writes last_used_at, stores the key
    time.sleep(1.0)  # the coherence channel's first heartbeat: memory serves from then on
    verify_credential(plaintext)

    def sync_once() -> None:
        verify_credential(plaintext)

    async def async_rounds(hop: bool) -> list[float]:
        timings = []
        verify = sync_to_async(verify_credential) if hop else averify_credential
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(PER_ROUND):
                await verify(plaintext)
            timings.append((time.perf_counter() - started) / PER_ROUND * 1e6)
        return timings

    sync_timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(PER_ROUND):
            sync_once()
        sync_timings.append((time.perf_counter() - started) / PER_ROUND * 1e6)
    rows = [
        ("verify_credential (sync)", sync_timings),
        ("averify_credential (event loop)", asyncio.run(async_rounds(hop=False))),
        ("sync_to_async(verify_credential)", asyncio.run(async_rounds(hop=True))),
    ]
    remembered = _remembered_principal(plaintext) is not None
    print(f"warm valid user key, median of {ROUNDS} rounds of {PER_ROUND} (µs per call)")
    print(f"  answered from process memory on the event loop: {'yes' if remembered else 'NO'}")
    for name, timings in rows:
        print(f"  {name:36} {statistics.median(timings):8.1f}")


if __name__ == "__main__":
    main()
