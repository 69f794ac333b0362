"""Each process's own memory of verified keys, kept coherent through Redis pub/sub.

A process serves from memory only while its channel is healthy: it is subscribed, and its own
heartbeat came back through Redis within ``LEASE * 3/4`` seconds. Each heartbeat renews the
process's lease, a member of a Redis sorted set expiring ``LEASE`` seconds later by Redis's
clock, so a process that can no longer hear stops serving from memory before its lease lapses.

A change of a key, before it writes, publishes the names of its cache entries and waits until
every process whose lease was current has acknowledged: dropped those entries and refused to
keep them again until the change is released (after its commit) or ``TOMBSTONE`` seconds pass.
Processes whose leases lapse meanwhile are not waited for. When that cannot be confirmed within
``LEASE + 1`` seconds, ``drop_everywhere`` returns False and the change is refused. Each drop is
also listed in Redis for ``TOMBSTONE`` seconds: a process that (re)subscribes forgets everything
and refuses the names of the drops listed, so a change it never heard of cannot leave it holding
a row read before that change committed. A value is kept only if no drop of its name (nor of
everything) reached this process since the read that found it began (``mark``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils.crypto import get_random_string

from .conf import phoenix_settings

logger = logging.getLogger("phoenix_apikeys")

LEASE = 2.0
TOMBSTONE = 60.0
MAX_ENTRIES = 10_000
CHANNEL = "phoenix_apikeys:drop"
PROCESSES = "phoenix_apikeys:processes"
OPEN = "phoenix_apikeys:open-drops"
# Redis's clock for both sides of a lease: ``now`` in seconds.
_NOW = "local t = redis.call('TIME') local now = t[1] + t[2] / 1000000 "
# Renew a lease; 0 when it had lapsed or was lost (a flush): drops may have gone unwaited-for.
RENEW = _NOW + (
    "local held = redis.call('ZSCORE', KEYS[1], ARGV[1]) "
    "redis.call('ZADD', KEYS[1], now + ARGV[2], ARGV[1]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600) "
    "if held and tonumber(held) > now then return 1 end return 0"
)
# Publish a drop, list it for late subscribers, and remember whose leases were current then:
# those must acknowledge it.
PUBLISH = _NOW + (
    "local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf') "
    "for _, member in ipairs(live) do redis.call('SADD', KEYS[2], member) end "
    "redis.call('EXPIRE', KEYS[2], 60) "
    "redis.call('ZADD', KEYS[3], now + ARGV[3], ARGV[2]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) "
    "redis.call('PUBLISH', ARGV[1], ARGV[2]) return #live"
)
# Of those, who still holds a current lease and has not acknowledged.
PENDING = _NOW + (
    "local out = {} for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
    "local expiry = redis.call('ZSCORE', KEYS[1], member) "
    "if expiry and tonumber(expiry) > now and redis.call('SISMEMBER', KEYS[3], member) == 0 "
    "then table.insert(out, member) end end return out"
)
OPEN_DROPS = _NOW + "return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')"


def redis_url(alias: str | None) -> str | None:
    """The Redis behind the cache ``alias``, or None when it is no Redis cache."""
    if not alias or alias not in settings.CACHES:
        return None
    config = settings.CACHES[alias]
    if "redis" not in str(config.get("BACKEND", "")).lower():
        return None
    location = config.get("LOCATION")
    location = location[0] if isinstance(location, (list, tuple)) else location
    return str(location) if location else None


def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


class Memory:
    """One process's verified keys, and the thread that keeps them coherent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.id = f"{os.getpid()}-{get_random_string(12)}"
        self.lock = threading.Lock()
        self.entries: dict[str, Any] = {}
        self.tombstones: dict[str, float] = {}
        # Drops counted in order: a read marks the count when it begins, and what it found is
        # kept only if neither its name nor everything was dropped since.
        self.drops = 0
        self.dropped: dict[str, tuple[int, float]] = {}  # name: (count, monotonic) of its drop
        self.cleared = 0  # the count at the last drop of everything
        self.forgotten = 0  # the latest count no longer listed in ``dropped``
        self.healthy_until = 0.0
        self.thread = threading.Thread(target=self.listen, name="phoenix_apikeys", daemon=True)
        self.thread.start()

    def serving(self) -> bool:
        return time.monotonic() < self.healthy_until

    def recall(self, name: str) -> Any:
        # No lock: ``forget`` removes an entry as it tombstones the name, and ``keep`` refuses
        # a tombstoned name, so no entry is held under a tombstone.
        return self.entries.get(name) if time.monotonic() < self.healthy_until else None

    def keep(self, name: str, value: Any, mark: int) -> bool:
        """Keep ``value``, read since the drop count was ``mark``; False when it may be stale."""
        with self.lock:
            if not self._unchanged(name, mark):
                return False
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.pop(next(iter(self.entries)))
            self.entries[name] = value
            return True

    def unchanged(self, name: str, mark: int) -> bool:
        """Whether no change of ``name`` (nor of everything) reached this process since the
        drop count was ``mark``, none is under way, and the channel is healthy."""
        with self.lock:
            return self._unchanged(name, mark)

    def _unchanged(self, name: str, mark: int) -> bool:
        dropped = self.dropped.get(name, (0, 0.0))[0]
        if max(dropped, self.cleared, self.forgotten) > mark or not self.serving():
            return False
        return self.tombstones.get(name, 0.0) <= time.monotonic()

    def clear(self) -> None:
        with self.lock:
            self.drops += 1
            self.cleared = self.drops
            self.entries.clear()

    def forget(self, names: Iterable[str], *, until: float | None) -> None:
        now = time.monotonic()
        with self.lock:
            self.drops += 1
            for name in names:
                self.entries.pop(name, None)
                self.dropped[name] = (self.drops, now)
                if until is None:
                    self.tombstones.pop(name, None)
                else:
                    self.tombstones[name] = until
            for name in [name for name, end in self.tombstones.items() if end <= now]:
                del self.tombstones[name]
            # A read lasts far less than TOMBSTONE: older drops are summed up in ``forgotten``.
            for name in [name for name, (_, at) in self.dropped.items() if at < now - TOMBSTONE]:
                self.forgotten = max(self.forgotten, self.dropped.pop(name)[0])

    def listen(self) -> None:
        """Subscribe, heartbeat, drop what changes; on any failure forget all and start over."""
        failed = False
        while True:
            try:
                self.subscribed(_client(self.url))
            except Exception as error:  # any Redis failure: stop serving from memory
                self.healthy_until = 0.0
                if not failed:
                    logger.warning(
                        "Key memory channel lost (%s); serving from the shared cache.",
                        type(error).__name__,
                    )
                failed = True
                time.sleep(max(LEASE / 4, phoenix_settings.CACHE_RETRY_INTERVAL))

    def subscribed(self, client: Any) -> None:
        own = f"{CHANNEL}:{self.id}"
        pubsub = client.pubsub()
        pubsub.subscribe(CHANNEL, own)
        confirmed = 0
        while confirmed < 2:  # subscribed on the server before the open drops are read
            message = pubsub.get_message(timeout=LEASE)
            if message is None:
                raise TimeoutError("no subscription confirmed")
            confirmed += message.get("type") == "subscribe"
        self.clear()
        for opened in client.eval(OPEN_DROPS, 1, OPEN):
            self.apply(opened.decode(), client)
        beat = 0.0
        while True:
            now = time.monotonic()
            if now >= beat:
                client.publish(own, repr(now))
                beat = now + LEASE / 4
            message = pubsub.get_message(timeout=LEASE / 8)
            if message is None or message.get("type") != "message":
                continue
            if message["channel"].decode() == own:  # our heartbeat came back: renew the lease
                sent = float(message["data"])
                if not client.eval(RENEW, 1, PROCESSES, self.id, LEASE):
                    self.clear()  # not waited for while the lease was missing
                self.healthy_until = max(self.healthy_until, sent + LEASE * 0.75)
                continue
            self.apply(message["data"].decode(), client)

    def apply(self, message: str, client: Any) -> None:
        action, change, names = json.loads(message)
        if action == "drop":
            self.forget(names, until=time.monotonic() + TOMBSTONE)
            client.sadd(f"{CHANNEL}:acks:{change}", self.id)
            client.expire(f"{CHANNEL}:acks:{change}", 60)
        elif change != self.id:  # a release this process made was applied when it was made
            self.forget(names, until=None)


_memory: Memory | None = None
_memory_lock = threading.Lock()


def forget_all() -> None:
    """Empty this process's memory, if it has one (its listener keeps running)."""
    if _memory is not None:
        _memory.clear()


def memory(url: str | None) -> Memory | None:
    """This process's memory (started on first use, and again in a forked child)."""
    global _memory
    if url is None:
        return None
    found = _memory
    if found is not None and found.url == url:
        return found
    with _memory_lock:
        if _memory is None or _memory.url != url:
            _memory = Memory(url)
        return _memory


_publishers: dict[str, Any] = {}


def _publisher(url: str) -> Any:
    """A client for changes, one per process and Redis (its pool is thread-safe)."""
    found = _publishers.get(url)
    if found is None:
        found = _publishers[url] = _client(url)
    return found


def _forked() -> None:
    """In a forked child (gunicorn --preload, multiprocessing): the parent's memory, its
    listener thread and its connections are not this process's; start afresh on first use."""
    global _memory, _memory_lock
    _memory, _memory_lock = None, threading.Lock()
    _publishers.clear()


os.register_at_fork(after_in_child=_forked)


def drop_everywhere(url: str, names: list[str]) -> bool:
    """Tell every process to drop ``names`` (this one at once) and wait for each one whose
    lease is current; False when that is not confirmed within LEASE + 1 seconds (or Redis
    cannot be asked)."""
    here = _memory
    if here is not None:
        here.forget(names, until=time.monotonic() + TOMBSTONE)
    client = _publisher(url)
    change = get_random_string(16)
    pending, acks = f"{CHANNEL}:pending:{change}", f"{CHANNEL}:acks:{change}"
    message = json.dumps(["drop", change, names])
    try:
        client.eval(PUBLISH, 3, PROCESSES, pending, OPEN, CHANNEL, message, TOMBSTONE)
        deadline, pause = time.monotonic() + LEASE + 1, 0.001
        while client.eval(PENDING, 3, PROCESSES, pending, acks):
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return True
    except Exception as error:  # Redis unreachable: the change cannot be confirmed
        logger.warning("Could not drop keys from every process's memory (%s).", error)
        return False


def release(url: str, names: list[str]) -> None:
    """After the change committed: drop again and lift the refusal to keep them."""
    here = _memory
    sender = ""
    if here is not None:
        here.forget(names, until=None)
        sender = here.id
    try:
        _publisher(url).publish(CHANNEL, json.dumps(["release", sender, names]))
    except Exception as error:  # the refusal lapses after TOMBSTONE seconds anyway
        logger.warning("Could not release dropped keys (%s).", error)


def own_copy(value: Any, copies: dict[int, Any] | None = None) -> Any:
    """A copy for one request, of a key and its owner (or of a user), and of every related
    object they hold: Django caches permissions on a user object (``_perm_cache``), and a
    permission taken away must count on the next request, as it does for a copy read from the
    shared cache. What memory keeps is such a copy too, so it shares nothing with a request.
    ``copies`` holds what is copied already, for objects that hold each other (the admin
    secret's user holds its SystemUser row, which holds the user)."""
    clone = _shallow_copy(value)
    related = clone._state.fields_cache
    for name, held in related.items():
        if held is None:
            continue
        if not held._state.fields_cache:  # holds nothing more (a key's owner): one copy
            related[name] = _shallow_copy(held)
            continue
        copies = {} if copies is None else copies
        copies[id(value)] = clone
        copied = copies.get(id(held))
        related[name] = own_copy(held, copies) if copied is None else copied
    return clone


def _shallow_copy(instance: Any) -> Any:
    """What ``copy.copy`` makes of a model instance (its attributes, and its ``_state`` with the
    related objects it holds), without the pickling protocol's detour: new objects that take
    copies of the originals' attribute dicts."""
    state = instance._state
    attributes = state.__dict__.copy()
    attributes["fields_cache"] = dict(state.fields_cache)  # its own: own_copy replaces entries
    state_clone = state.__class__.__new__(state.__class__)
    state_clone.__dict__ = attributes
    attributes = instance.__dict__.copy()
    attributes["_state"] = state_clone
    model = instance.__class__
    clone = model.__new__(model)
    clone.__dict__ = attributes
    return clone
