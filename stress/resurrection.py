"""Resurrection: can a writer racing a revocation, rotation or grace period undo it?

revocation.py's set-up (two gunicorn masters, "host A" and "host B", two sync workers each, on
PostgreSQL and a shared key cache) serves the example project. Each trial takes a fresh key,
starts a writer loop on it (the admin change form saved back to back from one thread per host,
or REST reads, or a second rotation), fires one revocation or rotation mid-loop on host A, stops
the writer, then asks both hosts over HTTP and, after each surface, `list_api_keys --json` and
the audit trail (KeyEvent):

- a revoked key (REST DELETE, leak report, revoke_api_key, rotation with grace 0) must answer
  401 on both hosts and be absent from every listing, else it was **resurrected**;
- a key rotated with a grace period must keep the expiry the rotation gave it (the new key's
  created_at plus the grace period), else the grace period was **lost**;
- a key is replaced once: one 201 of two concurrent rotations, one new key listed, one
  `rotated` event, else a **double replacement**.

    python stress/resurrection.py [--quick] [--trials N] [--only S,S] [--write PATH]
        [--app-dir PATH] [--cache-url URL] [--database NAME] [--budget SECONDS]

Exit status: 0 passed, 1 a failure seen, 2 harness error, 3 deadline or SIGTERM, 130 Ctrl-C.
It drops and re-creates its own database (phoenix_resurrection) and flushes Redis db 10.
Traffic goes to 127.0.0.1 only, from client addresses in 127.0.0.0/8 (one per trial and role,
so neither the failed-authentication throttle nor LEAK_REVOCATION_LIMIT, 10 reports per address,
is ever reached). No plaintext key or secret is printed or written: every line is redacted.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from common import put_section
from revocation import (
    JSON_MARKER,
    LOOPBACK,
    REPO,
    STATUS_ERROR,
    Config,
    FormFields,
    Harness,
    HarnessError,
    cache_text,
    csrf_token,
    fetch,
    markdown_table,
    redact,
    run_guarded,
    say,
    text_table,
    versions,
)

HOSTS = ("A", "B")
PROBES = ("/api/hello/", "/v1/user")
GRACE = 3600  # seconds, for the rotations that keep the old key
TOLERANCE = timedelta(seconds=1)  # the rotation's clock vs the new key's created_at
CATEGORIES = ("resurrected", "lost grace", "double replacement", "error")


@dataclass(frozen=True)
class Surface:
    name: str
    revoke: str  # delete, leak, command, rotate-0, rotate-grace, rotate-twice
    writer: str  # admin-save, rest-reads, rotation
    description: str


# name | how it revokes | the writer racing it | what that is (for the report)
SURFACES = tuple(
    Surface(*row.split(" | "))
    for row in f"""
rest-delete/admin-save | delete | admin-save | `DELETE` of the key (owner's session or secret)
leak-report/admin-save | leak | admin-save | `POST /v1/api_keys/revoke` with the plaintext
cmd-revoke/admin-save | command | admin-save | `manage.py revoke_api_key <id>`
rotate-0/admin-save | rotate-0 | admin-save | `POST .../rotate`, `grace_period` 0 (revoked)
rotate-grace/admin-save | rotate-grace | admin-save | `POST .../rotate`, `grace_period` {GRACE}
rest-delete/rest-reads | delete | rest-reads | `DELETE` while the key and the secret list keys
rotate/rotate | rotate-twice | rotation | two rotations at once, `grace_period` 0 or {GRACE}
""".strip().splitlines()
)


@dataclass
class Key:
    name: str
    kind: str  # user (owned by its surface's owner, who rotates it in person) or system
    id: str = ""
    pk: int = 0
    plaintext: str = field(default="", repr=False)


@dataclass
class Trial:
    surface: Surface
    number: int
    key: Key
    sources: list[str]  # client addresses: the writer's, the probes', the leak report's
    outcome: str = ""  # what the revocation answered: "204", "exit 0", "201+422"
    ok: bool = False  # the revocation or rotation did what it should
    grace: int | None = None  # the grace period of a rotation that answered 201
    rotated_at: datetime | None = None  # the new key's created_at
    wins: int = 0  # rotations that answered 201
    writes: Counter[int] = field(default_factory=Counter)
    saves: int = 0  # change-form saves the admin accepted (302 to the list)
    findings: dict[str, list[str]] = field(default_factory=dict)
    committed: bool = True  # False once the audit trail shows no revocation of the key

    def find(self, category: str, detail: str) -> None:
        self.findings.setdefault(category, []).append(detail)

    @property
    def gone(self) -> bool:
        """The key must be revoked by now."""
        revoked = self.ok and self.surface.revoke in ("delete", "leak", "command")
        return self.committed and (revoked or (self.wins > 0 and self.grace == 0))

    @property
    def graced(self) -> bool:
        return self.wins > 0 and bool(self.grace)

    def summary(self) -> str:
        return "; ".join(f"{c}: {', '.join(d)}" for c, d in self.findings.items()) or "ok"


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 trials per surface (CI)")
    parser.add_argument("--trials", type=int, help="trials per surface (default 5 quick, 50)")
    parser.add_argument("--only", default="", help="comma-separated surface names")
    parser.add_argument("--write", type=Path, help="write this script's part of a Markdown page")
    parser.add_argument("--app-dir", type=Path, default=REPO, help="checkout to serve")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/10", help="CACHE_URL")
    parser.add_argument("--database", default="phoenix_resurrection", help="PostgreSQL database")
    parser.add_argument("--budget", type=int, help="hard deadline in seconds")
    args = parser.parse_args(argv)
    trials = args.trials or (5 if args.quick else 50)
    only = tuple(name for name in args.only.split(",") if name)
    if not 1 <= trials <= 100:
        parser.error("--trials must be between 1 and 100")
    if set(only) - {surface.name for surface in SURFACES}:
        parser.error(f"--only: surfaces are {', '.join(s.name for s in SURFACES)}")
    system = args.database in ("postgres", "template0", "template1")
    if system or not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", args.database):
        parser.error("--database: a plain lowercase identifier, not a system database")
    # Measured here: --quick 34-61 s, the full run (50 per surface) 3.5-5 minutes.
    default = 120 if args.quick else 120 + trials * len(only or SURFACES) * 3
    return Config(
        quick=args.quick,
        trials=trials,
        app_dir=args.app_dir.resolve(),
        cache_url=args.cache_url,
        database=args.database,
        write=args.write,
        budget=args.budget or default,
        only=only,
        skip_checks=False,
    )


def call(
    port: int, method: str, path: str, headers: dict[str, str], body: Any = None, **kw: Any
) -> tuple[int, str, str]:
    """One request on a fresh connection, safe from any thread: status (STATUS_ERROR on a
    transport error), body, Location. ``form=`` posts a form, ``source=`` binds the client."""
    headers, data, source = dict(headers), None, kw.get("source", LOOPBACK)
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif "form" in kw:
        data = urlencode(kw["form"]).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    bind = None if source == LOOPBACK else (source, 0)
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10, source_address=bind)
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, text, response.getheader("Location") or ""
    except (OSError, http.client.HTTPException):
        return STATUS_ERROR, "", ""
    finally:
        connection.close()


def when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


SEED_SCRIPT = f"""
import json, os
import phoenix_apikeys
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
hashed = make_password(os.environ["STRESS_PASSWORD"])  # one hash: each costs a second here
for name in json.loads(os.environ["STRESS_OWNERS"]):
    get_user_model().objects.create(
        username=name, email=name + "@example.invalid", is_staff=True, is_superuser=True,
        password=hashed,
    )
print({JSON_MARKER!r} + json.dumps({{"module": phoenix_apikeys.__file__}}))
"""

# The audit trail of the surface's keys, then the clean-up: every key of the surface still
# there is revoked, so no owner nears MAX_KEYS_PER_USER or MAX_SYSTEM_KEYS (where set).
CHECK_SCRIPT = f"""
import json, os
from phoenix_apikeys.models import KeyEvent, SystemKey, UserKey
found = {{}}
events = KeyEvent.objects.filter(key_id__in=json.loads(os.environ["STRESS_IDS"]))
for key_id, action in events.values_list("key_id", "action"):
    found.setdefault(key_id, []).append(action)
for model in (UserKey, SystemKey):
    for key in model.objects.filter(name__startswith=os.environ["STRESS_PREFIX"]):
        key.delete()
print({JSON_MARKER!r} + json.dumps(found))
"""


class Resurrection(Harness):
    """revocation.py's harness (database, two gunicorn masters, manage.py), logged in as the
    owner of the surface being run."""

    session: dict[str, str]

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_secret}"}

    def owner(self, key: Key) -> dict[str, str]:
        """User keys are made, deleted and rotated by their owner in person (the surface's
        owner, a superuser, logged in), system keys with the admin secret."""
        return self.session if key.kind == "user" else self.bearer()

    def seed(self, owners: list[str]) -> None:
        """Migrate; one shell creates a superuser per surface (each owns that surface's user
        keys, so no one owns more than 100 live keys)."""
        self.manage("migrate", "--noinput")
        env = {**self.env, "STRESS_PASSWORD": self.admin_password}
        result = self.shell_json(SEED_SCRIPT, env={**env, "STRESS_OWNERS": json.dumps(owners)})
        if not Path(result["module"]).resolve().is_relative_to(self.config.app_dir):
            raise HarnessError(f"phoenix_apikeys imported from {result['module']}")

    def login(self, username: str) -> None:
        """The admin login form on host A; then the session (cookie and CSRF header) is used on
        either host, from any thread."""
        browser, url = requests.Session(), self.url("A", "/admin/login/")
        page = browser.get(url, timeout=10).text
        form = {"username": username, "password": self.admin_password, "next": "/admin/"}
        form["csrfmiddlewaretoken"] = csrf_token(page)
        response = browser.post(url, data=form, timeout=10, allow_redirects=False)
        if response.status_code != 302 or "sessionid" not in browser.cookies:
            raise HarnessError(f"login of {username} failed ({response.status_code})")
        session, csrf = browser.cookies["sessionid"], browser.cookies["csrftoken"]
        self.session = {
            "Cookie": f"sessionid={session}; csrftoken={csrf}",
            "X-CSRFToken": str(csrf),
        }

    def mint_key(self, key: Key) -> None:
        """A fresh key made over REST, just before its surface's trials."""
        path = "/v1/user/api_keys" if key.kind == "user" else "/v1/system/api_keys"
        body = {"data": {"name": key.name}}
        status, text, _ = call(self.ports["A"], "POST", path, self.owner(key), body)
        if status != 201:
            raise HarnessError(f"POST {path}: {status}")
        data = json.loads(text)["data"]
        key.id, key.plaintext = data["id"], data["key"]
        key.pk = int(base64.b64decode(key.id).decode().rpartition(":")[2])

    @staticmethod
    def api(key: Key, suffix: str = "") -> str:
        return f"/v1/{key.kind}/api_keys/{key.id}{suffix}"

    @staticmethod
    def listing(key: Key) -> str:
        return "/v1/users/api_keys?limit=1000" if key.kind == "user" else "/v1/system/api_keys"

    # The revocations -------------------------------------------------------------------------

    def rotate(self, trial: Trial, host: str, grace: int) -> int:
        body = {"data": {"grace_period": grace}}
        path = self.api(trial.key, "/rotate")
        status, text, _ = call(self.ports[host], "POST", path, self.owner(trial.key), body)
        if status == 201:
            trial.wins += 1
            trial.grace, trial.rotated_at = grace, when(json.loads(text)["data"]["created_at"])
        return status

    def revoke(self, trial: Trial) -> None:
        key, port, how = trial.key, self.ports["A"], trial.surface.revoke
        if how == "delete":
            status = call(port, "DELETE", self.api(key), self.owner(key))[0]
            trial.outcome, trial.ok = str(status), status == 204
        elif how == "leak":
            body, source = {"data": {"keys": [key.plaintext]}}, trial.sources[2]
            status = call(port, "POST", "/v1/api_keys/revoke", {}, body, source=source)[0]
            trial.outcome, trial.ok = str(status), status == 202
        elif how == "command":
            try:
                self.manage("revoke_api_key", key.id)
                trial.outcome, trial.ok = "exit 0", True
            except HarnessError as error:
                trial.outcome = "failed"
                trial.find("error", str(error))
        elif how != "rotate-twice":
            status = self.rotate(trial, "A", 0 if how == "rotate-0" else GRACE)
            trial.outcome, trial.ok = str(status), status == 201
        else:  # two at once, released by a barrier, one per host: one 201, one 404 or 422
            grace, gate, statuses = (0, GRACE)[trial.number // 2 % 2], threading.Barrier(2), {}

            def one(host: str) -> None:
                gate.wait(10)
                statuses[host] = self.rotate(trial, host, grace)

            threads = [threading.Thread(target=one, args=(host,)) for host in HOSTS]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(20)
            answers = sorted(statuses.get(host, STATUS_ERROR) for host in HOSTS)
            trial.outcome = "+".join(map(str, answers))
            trial.ok = answers[0] == 201 and answers[1] in (404, 422)
            if trial.wins > 1:
                trial.find("double replacement", f"two rotations answered {trial.outcome}")
        if not trial.ok and not trial.findings:
            trial.find("error", f"{how} answered {trial.outcome}")

    # The writers -----------------------------------------------------------------------------

    def change_form(self, key: Key) -> tuple[str, list[tuple[str, str]]]:
        """The change form's path and fields as a browser would submit them."""
        path = f"/admin/phoenix_apikeys/{key.kind}key/{key.pk}/change/"
        status, page, _ = call(self.ports["A"], "GET", path, self.session)
        parser = FormFields(f"{key.kind}key_form")
        parser.feed(page)
        names = {name for name, _ in parser.fields}
        if status != 200 or not {"csrfmiddlewaretoken", "name"} <= names:
            raise HarnessError(f"GET {path}: {status}, form fields {sorted(names)}")
        return path, parser.fields

    def writer(
        self, trial: Trial, host: str, form: Any, stop: threading.Event, out: list[Any]
    ) -> None:
        """Until told to stop: save the change form with a new name (302 to the list: saved),
        or read (the key lists its own keys, the admin secret everyone's)."""
        port, key, i = self.ports[host], trial.key, 0
        while not stop.is_set():
            if trial.surface.writer == "admin-save":
                path, fields = form
                data = [(n, f"{key.name} #{host}{i}" if n == "name" else v) for n, v in fields]
                status, _, location = call(port, "POST", path, self.session, form=data)
                out.append((status, status == 302 and location.rstrip("/").endswith("key")))
            elif i % 2:
                out.append((call(port, "GET", self.listing(key), self.bearer())[0], False))
            else:
                own, source = {"Authorization": f"Bearer {key.plaintext}"}, trial.sources[0]
                out.append((call(port, "GET", "/v1/user/api_keys", own, source=source)[0], False))
            i += 1

    def trial(self, trial: Trial) -> None:
        form = self.change_form(trial.key) if trial.surface.writer == "admin-save" else None
        stop, outs = threading.Event(), [[] for _ in HOSTS]  # type: ignore[var-annotated]
        threads = [
            threading.Thread(target=self.writer, args=(trial, host, form, stop, out))
            for host, out in zip(HOSTS, outs, strict=True)
            if trial.surface.writer != "rotation"
        ]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(0.1, 0.25))  # noqa: S311 - a random phase, not a secret
        try:
            self.revoke(trial)
            time.sleep(0.1)
        finally:
            stop.set()
            for thread in threads:
                thread.join(15)
        for status, saved in (entry for out in outs for entry in out):
            trial.writes[status] += 1
            trial.saves += saved
        broken = sum(n for status, n in trial.writes.items() if status >= 500 or not status)
        if broken:
            trial.find("error", f"{broken} writer request(s) answered 5xx or nothing")
        self.check_http(trial)

    # The checks ------------------------------------------------------------------------------

    def check_http(self, trial: Trial) -> None:
        """Probes with the key and the REST listing of its kind, on both hosts."""
        key, listings, source = trial.key, {}, trial.sources[1]
        probes = {
            f"{host} {path}": fetch(self.ports[host], "GET", path, key.plaintext, 5.0, source)
            for host in HOSTS
            for path in PROBES
        }
        for host in HOSTS:
            status, text, _ = call(self.ports[host], "GET", self.listing(key), self.bearer())
            if status != 200 or json.loads(text).get("next_cursor"):
                raise HarnessError(f"listing keys on host {host}: {status}")
            listings[f"host {host}"] = json.loads(text)["data"]
        self.judge(trial, listings)
        accepted = [probe for probe, status in probes.items() if status == 200]
        if trial.gone and accepted:
            hosts = "+".join(sorted({probe.split()[0] for probe in accepted}))
            trial.find("resurrected", f"200 from host {hosts}")
        expected = 401 if trial.gone else 200
        if (trial.gone or trial.graced) and set(probes.values()) - {200, expected}:
            trial.find("error", f"probes answered {probes}")
        elif trial.graced and len(accepted) < len(probes):
            trial.find("error", f"grace-rotated key refused: {probes}")

    def judge(self, trial: Trial, listings: dict[str, list[dict[str, Any]]]) -> None:
        """Listings: a revoked key absent, a grace-rotated key with the rotation's expiry, and
        at most one key replacing it (renames keep the name before " #")."""
        key = trial.key
        for where, entries in listings.items():
            old = next((entry for entry in entries if entry["id"] == key.id), None)
            new = [e for e in entries if e["id"] != key.id and e["name"].split(" #")[0] == key.name]
            if trial.gone and old is not None:
                trial.find("resurrected", f"listed by {where}")
            if trial.graced and trial.rotated_at is not None:
                set_to = trial.rotated_at + timedelta(seconds=trial.grace or 0)
                expiry = when(old["expires_at"]) if old else None
                if old is None:
                    trial.find("error", f"grace-rotated key missing from {where}")
                elif expiry is None or abs(expiry - set_to) > TOLERANCE:
                    if "lost grace" not in trial.findings:
                        trial.find("lost grace", f"the rotation set expires_at {set_to:%H:%M:%S}")
                    trial.find("lost grace", f"{where} lists {expiry or 'none'}")
            if len(new) > min(trial.wins, 1):
                trial.find("double replacement", f"{len(new)} new keys listed by {where}")

    def final_checks(self, trials: list[Trial], prefix: str) -> None:
        """list_api_keys --json and the audit trail once the surface's writers have stopped;
        then its keys are cleaned up."""
        listed = json.loads(self.manage("list_api_keys", "--json"))
        ids = json.dumps([trial.key.id for trial in trials])
        events = self.shell_json(
            CHECK_SCRIPT, {**self.env, "STRESS_IDS": ids, "STRESS_PREFIX": prefix}
        )
        for trial in trials:
            actions = Counter(events.get(trial.key.id, []))
            if trial.gone and not actions["revoked"] + actions["leak_revoked"]:
                # Nothing was revoked (a leak report answers 202 whatever it did): not undone.
                trial.committed, seen = False, trial.findings.pop("resurrected", [])
                still = f"; the key was {', '.join(seen)}" if seen else ""
                trial.find("error", f"{trial.outcome} but no revocation in the audit trail{still}")
            if actions["rotated"] > 1:
                trial.find("double replacement", f"{actions['rotated']} rotated events")
            self.judge(trial, {"list_api_keys": [e for e in listed if e["kind"] == trial.key.kind]})


# Running and reporting -----------------------------------------------------------------------


def make_trials(config: Config) -> list[Trial]:
    trials: list[Trial] = []
    for index, surface in enumerate(SURFACES):
        if config.only and surface.name not in config.only:
            continue
        for number in range(config.trials):
            key, n = Key(f"rz-{index}-{number:02d}", ("user", "system")[number % 2]), len(trials)
            sources = [f"127.0.{20 + m // 250}.{1 + m % 250}" for m in range(3 * n, 3 * n + 3)]
            trials.append(Trial(surface, number, key, sources))
    return trials


HEADERS = ["surface", "trials", "succeeded", "writer requests", "saves", *CATEGORIES, "result"]


def rows(trials: list[Trial]) -> list[list[str]]:
    table = []
    for surface in SURFACES:
        mine = [t for t in trials if t.surface == surface]
        failed = sum(bool(t.findings) for t in mine)
        counts = [str(sum(category in t.findings for t in mine)) for category in CATEGORIES]
        writes = str(sum(sum(t.writes.values()) for t in mine))
        result = f"FAIL ({failed}/{len(mine)})" if failed else "ok"
        if mine:
            ok, saves = str(sum(t.ok for t in mine)), str(sum(t.saves for t in mine))
            table.append([surface.name, str(len(mine)), ok, writes, saves, *counts, result])
    return table


def markdown(
    config: Config, trials: list[Trial], tracebacks: int, wall: float, argv: list[str]
) -> str:
    failed = [t for t in trials if t.findings]
    totals = ", ".join(f"{sum(c in t.findings for t in trials)} {c}" for c in CATEGORIES)
    verdict = (
        f"**Failed**: {len(failed)} of {len(trials)} trials ({totals})."
        if failed
        else "**Passed**: no revoked key came back, no grace period was lost, no key was "
        "replaced twice."
    )
    shown = [f"- {t.surface.name} {t.number + 1} ({t.key.kind}): {t.summary()}" for t in failed]
    failures = "\n".join(shown[:20] + [f"- ... and {len(shown) - 20} more"] * (len(shown) > 20))
    info = "\n".join(f"  - {name}: {value}" for name, value in versions(config).items())
    return f"""## Resurrection: can a concurrent writer undo a revocation?

Can a writer racing a revocation, a rotation or a grace period undo it? `stress/resurrection.py`
checks it with real processes (see `stress/README.md`): per trial a fresh key, a writer loop on
it (the admin change form saved back to back, one thread per host, unless said otherwise), one
revocation or rotation fired mid-loop on host A, then probes with the key and the REST listing
on both hosts; after each surface `list_api_keys --json` and the audit trail.

{verdict}

- Command: `python stress/resurrection.py {" ".join(argv)}`
- Wall time {wall:.0f} s; key cache {cache_text(config)}; database `{config.database}`
- Versions:
{info}

{markdown_table(HEADERS, rows(trials))}

{chr(10).join(f"- `{s.name}`: {s.description}" for s in SURFACES)}

*saves*: change-form saves the admin accepted (302 to the list). *resurrected*: a key whose
revocation is in the audit trail answered 200 or was listed afterwards. *lost grace*: the old
key's `expires_at` is not the one the rotation set (the new key's `created_at` + the grace
period). *double replacement*: two 201s, two new keys or two `rotated` events for one key.
*error*: anything else unexpected, e.g. a writer request answered 5xx, a revocation that failed
or left no audit event.

### Failures

{failures or "None."}

Tracebacks in the gunicorn logs: {tracebacks}.
"""


def main(argv: list[str]) -> int:
    config = parse_args(argv)
    harness = Resurrection(config)

    def body() -> int:
        trials = make_trials(config)
        say(f"serving {config.app_dir}, {cache_text(config)}; logs in {harness.workdir}")
        harness.reset_stores()
        harness.seed([f"stress-owner-{index}" for index in range(len(SURFACES))])
        harness.start_servers()
        say(f"[{harness.elapsed():6.1f}s] set up: hosts {harness.ports}")
        for index, surface in enumerate(SURFACES):
            mine = [trial for trial in trials if trial.surface is surface]
            if not mine:
                continue
            harness.login(f"stress-owner-{index}")
            for trial in mine:
                harness.mint_key(trial.key)
            for trial in mine:
                harness.trial(trial)
                say(
                    f"[{harness.elapsed():6.1f}s] {surface.name:<23} {trial.number + 1:>2}"
                    f" {trial.key.kind:<6} {trial.outcome:<7} writes"
                    f" {sum(trial.writes.values()):3} saved {trial.saves:3}  {trial.summary()}"
                )
            harness.final_checks(mine, f"rz-{index}-")
        tracebacks = harness.log_tracebacks()
        harness.stop_servers()
        say("\n" + text_table(HEADERS, rows(trials)))
        failed = [trial for trial in trials if trial.findings]
        for t in failed:
            say(f"FAILURE: {t.surface.name} trial {t.number + 1} ({t.key.kind}): {t.summary()}")
        if tracebacks:
            say(f"FAILURE: {tracebacks} traceback(s) in the gunicorn logs")
        say(f"wall time {harness.elapsed():.1f} s")
        if config.write:
            page = markdown(config, trials, tracebacks, harness.elapsed(), argv)
            put_section(config.write, "resurrection", redact(page))
            say(f"wrote the resurrection part of {config.write}")
        say("FAILED" if failed or tracebacks else "PASSED")
        return 1 if failed or tracebacks else 0

    return run_guarded(harness, config.budget, body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
