"""Key restrictions: where a key may be used from, how often, how many times, and the addresses
it was last used from. Set when a key is made; changed only through its manager.

- ``allowed_networks``: CIDRs, stored space-separated; a request from elsewhere is 403. The
  client's address is the one the failure throttle counts (``http.client_ip``: REMOTE_ADDR, or the
  entry TRUSTED_PROXY_COUNT proxies appended to CLIENT_ADDRESS_HEADER), never a header the client
  wrote. A request whose address cannot be read is refused.
- ``rate_limit``: ``{"requests": N, "per": seconds}``, counted in fixed windows in
  THROTTLE_CACHE_ALIAS, shared by every process; past it 429 with ``Retry-After`` and the
  ``RateLimit-*`` headers. While that cache cannot count (unreachable, timing out, or
  per-process) each process carries on from the count it last saw: it never passes the limit
  itself, and P processes pass at most P times it: never unlimited, never an outage.
- ``remaining_uses``: spent one per authenticated request by a conditional UPDATE on the key's row
  (exact across processes); at 0 the key is refused with 401. A key with uses left is usable
  only while the database is.
- ``last_used_from``: the last MAX_RECENT_ADDRESSES distinct client addresses with times (JSON),
  written with ``last_used_at``, at most once per LAST_USED_INTERVAL.

A key without restrictions pays one attribute test per request (``is_restricted``).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.cache import BaseCache
from django.db import connections, router
from django.utils.translation import gettext, ngettext

from . import cache, scopes, throttle
from .conf import phoenix_settings
from .rules import CONTROL

logger = logging.getLogger("phoenix_apikeys")

# A key (models.AbstractAPIKey, which this module's callers are).
AbstractAPIKey = Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_NETWORKS = 100
MAX_RECENT_ADDRESSES = 5
# A rate limit's window: one second to one day.
LONGEST_RATE_WINDOW = 86_400
MOST_REQUESTS = 2**31 - 1  # what every database's integer column holds
_NAMESPACE = "phoenix_apikeys:rate:"


class AddressNotAllowed(scopes.OutOfScope):
    """403: a good key, from an address outside its allowed networks."""

    def __init__(self) -> None:
        super().__init__(gettext("This API key may not be used from this address."))


class RateLimited(throttle.TooManyFailures):
    """429: the key's own rate limit; ``headers`` are the ``RateLimit-*`` fields to send."""

    def __init__(self, limit: int, reset: int) -> None:
        super().__init__(reset, gettext("This API key's rate limit is exceeded."))
        self.headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
        }


# Validation, shared by the manager, the REST API, the admin and the commands.


def network_problems(values: Iterable[Any]) -> tuple[list[str], list[str]]:
    """The networks in stored form (unique, each as ``ipaddress`` writes it), and what is
    wrong with the list. A single address is its own network (/32 or /128); an IPv4-mapped IPv6
    network is stored as the IPv4 network it maps (client addresses are judged as IPv4)."""
    values = list(values)
    errors: list[str] = []
    if len(values) > MAX_NETWORKS:
        errors.append(
            ngettext(
                "A key may have at most %(count)d network.",
                "A key may have at most %(count)d networks.",
                MAX_NETWORKS,
            )
            % {"count": MAX_NETWORKS}
        )
    networks: list[str] = []
    for value in values[:MAX_NETWORKS]:
        network, error = _network(value)
        if error:
            errors.append(error)
        elif network not in networks:
            networks.append(network)
    return networks, errors


def _network(value: Any) -> tuple[str, str | None]:
    text = value.strip() if isinstance(value, str) else ""
    shown = CONTROL.sub("?", str(value)[:45])
    # ASCII only, no zone id ("fe80::1%eth0"): nothing that could split the stored list or reach
    # a terminal, and nothing a client's address is ever compared with.
    if not text.isascii() or not text.isprintable() or " " in text or "%" in text:
        text = ""
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return "", gettext('"%(value)s" is not an IPv4 or IPv6 network (CIDR).') % {
                "value": shown
            }
        return "", gettext('"%(value)s" has host bits set; did you mean %(network)s?') % {
            "value": shown,
            "network": loose,
        }
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return str(network), None


def rate_limit_problems(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict) or set(value) != {"requests", "per"}:
        return [gettext('A rate limit is {"requests": N, "per": seconds}.')]
    requests, per = value["requests"], value["per"]
    whole = all(isinstance(n, int) and not isinstance(n, bool) for n in (requests, per))
    if not whole or not 1 <= requests <= MOST_REQUESTS or not 1 <= per <= LONGEST_RATE_WINDOW:
        return [
            gettext(
                "A rate limit's requests must be from 1 to %(most)d, and per from 1 to "
                "%(longest)d seconds."
            )
            % {"most": MOST_REQUESTS, "longest": LONGEST_RATE_WINDOW}
        ]
    return []


@functools.lru_cache(maxsize=1024)
def networks_of(stored: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks a stored list names; one that cannot be read (a row written around the
    manager) names none, so the key is refused, never a server error."""
    networks = []
    for text in stored.split():
        try:
            networks.append(ipaddress.ip_network(text))
        except ValueError:
            logger.error("A key's allowed_networks holds %r, which is no network.", text[:45])
    return tuple(networks)


# At verification, in this order, after the key was found usable and within its scopes.


def admit(key: AbstractAPIKey, source: throttle.Source) -> None:
    """Refuse a request the key's restrictions do not allow: AddressNotAllowed (403),
    RateLimited (429); spend one of its remaining uses, False when none is left."""
    if key.allowed_networks:
        address = client_ip(source)
        if address is None or not any(address in net for net in networks_of(key.allowed_networks)):
            _report_outsider(key, address)
            raise AddressNotAllowed
    if key.rate_limit_requests is not None and key.rate_limit_per is not None:
        _count_request(key, key.rate_limit_requests, key.rate_limit_per)


# A key used from outside its networks is logged at most once a minute per key and process: a
# leaked key's holder must not fill the log.
OUTSIDER_LOG_INTERVAL = 60.0
_outsiders: dict[str, float] = {}


def _report_outsider(key: AbstractAPIKey, address: IPAddress | None) -> None:
    now = time.monotonic()
    with _known_lock:
        last = _outsiders.get(key.key_id)
        if last is not None and now - last < OUTSIDER_LOG_INTERVAL:
            return
        if len(_outsiders) >= throttle.MAX_TALLIES:
            _outsiders.clear()
        _outsiders[key.key_id] = now
    logger.warning(
        "%s key %s was presented from %s, outside its allowed networks, and refused: has it "
        "leaked?",
        key.kind.value.capitalize(),
        key.key_id,
        address or "an address that cannot be read",
    )


def spend_use(key: AbstractAPIKey) -> bool:
    """One use of a key with ``remaining_uses``, spent in the database; False when none is left
    (or the key is gone). The condition makes concurrent requests spend one each, never more than
    there are. One fixed statement (quoted by the connection): the ORM's UPDATE cost twice it."""
    model = type(key)
    using = router.db_for_write(model)
    connection = connections[using]
    quote = connection.ops.quote_name
    uses = quote(model._meta.get_field("remaining_uses").column)
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    sql = f"UPDATE {table} SET {uses} = {uses} - 1 WHERE {pk} = %s AND {uses} > 0"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [key.pk])
        spent: bool = cursor.rowcount == 1
    if spent:
        key.remaining_uses = max((key.remaining_uses or 1) - 1, 0)
    return spent


def client_ip(source: throttle.Source) -> IPAddress | None:
    """The whole client address of ``source`` (``http.Client`` or an address as text)."""
    finder = getattr(source, "ip", None)
    if finder is not None:
        return finder()  # type: ignore[no-any-return]
    text = throttle.address_of(source)
    try:
        return ipaddress.ip_address(text or "")
    except ValueError:
        return None


# Each window's count as this process last knew it: window name -> (ends, count). When the
# shared cache cannot count, the process carries on from there, so it never passes the limit
# itself (and all P processes together at most P times the limit).
_known: dict[str, tuple[float, int]] = {}
_known_lock = threading.Lock()


def forget() -> None:
    """Drop this process's counts (a forked child starts without its parent's)."""
    with _known_lock:
        _known.clear()
        _outsiders.clear()


os.register_at_fork(after_in_child=forget)


def _count_request(key: AbstractAPIKey, limit: int, per: int) -> None:
    now = time.time()
    window = int(now // per)
    ends = (window + 1) * per
    name = f"{_NAMESPACE}{key.key_id}:{per}:{window}"
    alias = phoenix_settings.THROTTLE_CACHE_ALIAS
    shared = cache.guarded(alias, lambda backend: _incr(backend, name, per), None)
    with _known_lock:
        known = _known.get(name, (ends, 0))[1]
        count = known + 1 if shared is None else max(shared, known + 1)
        _known[name] = (ends, count)
        if len(_known) > throttle.MAX_TALLIES:
            for ended in [n for n, (end, _) in _known.items() if end <= now]:
                del _known[ended]
    if count > limit:
        raise RateLimited(limit, max(1, math.ceil(ends - now)))


def _incr(backend: BaseCache, name: str, per: int) -> int:
    try:
        return int(backend.incr(name))
    except ValueError:  # the window's first request (or its count expired)
        if backend.add(name, 1, per + 1):
            return 1
        return int(backend.incr(name))


# last_used_from


def recent_addresses(stored: str) -> list[dict[str, str]]:
    try:
        recent = json.loads(stored or "[]")
    except ValueError:
        return []
    return recent if isinstance(recent, list) else []


def with_address(stored: str, address: IPAddress | None, now: datetime) -> str:
    """``stored`` with ``address`` first, at ``now``; the oldest beyond MAX_RECENT_ADDRESSES go."""
    if address is None:
        return stored
    text = str(address)
    recent = [entry for entry in recent_addresses(stored) if entry.get("address") != text]
    recent.insert(0, {"address": text, "at": now.isoformat()})
    return json.dumps(recent[:MAX_RECENT_ADDRESSES], separators=(",", ":"))
