"""Sends every query to the database of the case being timed (one database per key count)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

current = contextvars.ContextVar("bench_database", default="default")


@contextmanager
def use_database(alias: str) -> Iterator[None]:
    token = current.set(alias)
    try:
        yield
    finally:
        current.reset(token)


class CaseDatabase:
    def db_for_read(self, model: Any, **hints: Any) -> str:
        return current.get()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return current.get()

    def allow_relation(self, first: Any, second: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True
