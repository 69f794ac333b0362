"""The indexed queries of verification, compiled by the ORM once and then reused.

Building a queryset and compiling it costs several times what the database needs to answer it,
so the SQL of ``select_related("user").filter(digest=...)`` is compiled once per model, number
of candidate digests and connection, then executed with new parameters; rows become instances
through the same converters and ``from_db`` / related populators as the ORM's own iterator, so
it stays correct for any backend and any AUTH_USER_MODEL. The system user (admin secret) is
found the same way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.query import get_related_populators
from django.dispatch import receiver

# A parameter value no real digest or username equals, so its position in the params is ours.
_PLACEHOLDER = "\x00phoenix_apikeys digest {}\x00"


@dataclass(frozen=True)
class CompiledLookup:
    connection: BaseDatabaseWrapper
    generation: int
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]
    model: type[Model]
    init_list: tuple[str, ...]
    model_columns: slice
    populators: tuple[Any, ...]
    fetch_mode: Any  # Django 6.1+; None before
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]

    def fetch(self, values: list[str]) -> Any:
        params = list(self.params)
        for slot, value in zip(self.slots, values, strict=True):
            params[slot] = value
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        return self._instance(row)

    def _instance(self, row: Any) -> Any:
        values = list(row)
        for position, functions, expression in self.converters:
            value = values[position]
            for function in functions:
                value = function(value, expression, self.connection)
            values[position] = value
        db = self.connection.alias
        extra = {} if self.fetch_mode is None else {"fetch_mode": self.fetch_mode}
        instance = self.model.from_db(db, self.init_list, values[self.model_columns], **extra)
        for populator in self.populators:
            populator.populate(values, instance)
        return instance


class _PerThread(threading.local):
    lookups: dict[tuple[type[Model], str, tuple[str, ...], str, int], CompiledLookup]

    def __init__(self) -> None:
        self.lookups = {}


_compiled = _PerThread()
_generation = 0


@receiver(setting_changed)
def _recompile_after_settings_change(**kwargs: Any) -> None:
    """DATABASES, AUTH_USER_MODEL or anything else may have changed what the SQL must be."""
    global _generation
    _generation += 1


def find_by_digests(model: type[Model], digests: list[str], using: str) -> Any:
    """The key whose ``digest`` is one of ``digests``, its ``user`` joined; or None."""
    return find_first(model, "digest", digests, using, related=("user",))


def find_first(
    model: type[Model], field: str, values: list[str], using: str, related: tuple[str, ...] = ()
) -> Any:
    """The first row whose ``field`` is one of ``values``, ``related`` joined; or None."""
    connection = connections[using]
    key = (model, field, related, using, len(values))
    lookup = _compiled.lookups.get(key)
    if lookup is None or lookup.connection is not connection or lookup.generation != _generation:
        try:
            lookup = _compile(model, field, related, connection, len(values))
        except TypeError:  # an ORM internal changed shape (a future Django): use the ORM
            lookup = None
        if lookup is None:
            return next(iter(_queryset(model, field, related, values, using)), None)
        _compiled.lookups[key] = lookup
    return lookup.fetch(values)


def _queryset(
    model: type[Model], field: str, related: tuple[str, ...], values: list[str], using: str
) -> Any:
    queryset = model._default_manager.db_manager(using).order_by()
    if related:  # select_related() with no names would follow every foreign key
        queryset = queryset.select_related(*related)
    if len(values) == 1:
        return queryset.filter(**{field: values[0]})[:1]
    return queryset.filter(**{f"{field}__in": values})[:1]


def _related_populators(klass_info: Any, select: Any, alias: str, queryset: Any) -> Any:
    # Django 6.1 added a fetch mode to the populators; earlier versions take three arguments.
    fetch_mode = getattr(queryset, "_fetch_mode", None)
    if fetch_mode is None:
        return get_related_populators(klass_info, select, alias)  # type: ignore[call-arg]
    return get_related_populators(klass_info, select, alias, fetch_mode)


def _compile(
    model: type[Model],
    field: str,
    related: tuple[str, ...],
    connection: BaseDatabaseWrapper,
    size: int,
) -> Any:
    placeholders = [_PLACEHOLDER.format(i) for i in range(size)]
    queryset = _queryset(model, field, related, placeholders, connection.alias)
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    params = tuple(params)
    if compiler.annotation_col_map or sorted(params.count(p) for p in placeholders) != [1] * size:
        return None  # a manager added something we do not understand: let the ORM run it
    klass_info = compiler.klass_info
    select_fields = klass_info["select_fields"]
    start, stop = select_fields[0], select_fields[-1] + 1
    fields = [column[0] for column in compiler.select[: compiler.col_count]]
    return CompiledLookup(
        connection=connection,
        generation=_generation,
        sql=sql,
        params=params,
        slots=tuple(params.index(p) for p in placeholders),
        model=klass_info["model"],
        init_list=tuple(column[0].target.attname for column in compiler.select[start:stop]),
        model_columns=slice(start, stop),
        populators=tuple(
            _related_populators(klass_info, compiler.select, connection.alias, queryset)
        ),
        fetch_mode=getattr(queryset, "_fetch_mode", None),
        converters=tuple(
            (position, tuple(functions), expression)
            for position, (functions, expression) in compiler.get_converters(fields).items()
        ),
    )
