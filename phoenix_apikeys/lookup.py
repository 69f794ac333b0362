"""Verification's one query: the key whose digest is a candidate, with its owner joined.

Building and compiling a queryset costs several times what the database needs to answer this
indexed query, and verification runs it on every request the cache cannot answer. So, when the
ORM would add nothing to a plain join, the SQL is written here from the models' ``_meta``
(tables, columns, the foreign key's target) and the backend's quoting, once per key model,
connection and number of candidate digests. Each row goes through the converters the ORM
applies (the backend's, then the field's) and becomes instances through ``Model.from_db``, the
owner set on the key through its relation, so callers get what the ORM would have given them.

"The ORM would add nothing" means: neither the key model's nor the owner model's default
manager overrides ``get_queryset``, and each model lives in one table (no multi-table
inheritance). Otherwise a manager may filter (per tenant, per request, soft deletion) and only
the ORM knows how, so the same question is asked through it, still as one query: keys of the
key model's default manager, owned by a user its model's default manager returns.

Built SQL belongs to one connection object and one generation of settings: a new connection,
or any setting changing (DATABASES, AUTH_USER_MODEL, ...), builds it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import receiver

Converter = tuple[int, tuple[Callable[..., Any], ...], Any]

# The managers' own method when a manager does not customise it (QuerySet.as_manager(),
# BaseUserManager and UserManager included).
_PLAIN_GET_QUERYSET = models.Manager.get_queryset


def find_by_digests(model: type[models.Model], digests: list[str], using: str) -> Any:
    """The key whose ``digest`` is one of ``digests``, its ``user`` loaded; or None.

    One query either way; the same answer as
    ``model._default_manager.filter(digest__in=digests, user__in=<owners' default manager>)``.
    """
    return find(model, "digest", digests, using)


def find(model: type[models.Model], field: str, values: list[Any], using: str) -> Any:
    """A row of ``model`` whose ``field`` is one of ``values``, its ``user`` loaded; or None
    (``field`` is unique, so at most one row answers)."""
    if not values:  # as the ORM answers an empty ``__in``
        return None
    owner_model = _owner_model(model)
    if _customised(model) or _customised(owner_model):
        return _through_managers(model, owner_model, field, values, using)
    plan = _plan(model, field, connections[using], len(values))
    if plan is None:
        return _through_managers(model, owner_model, field, values, using)
    return plan.fetch(values)


def _owner_model(model: type[models.Model]) -> type[models.Model]:
    owner: type[models.Model] = model._meta.get_field("user").related_model  # type: ignore[assignment]
    return owner


def _customised(model: type[models.Model]) -> bool:
    """Whether the default manager may filter, so that only the ORM can answer for it."""
    return type(model._default_manager).get_queryset is not _PLAIN_GET_QUERYSET


def _through_managers(
    model: type[models.Model],
    owner_model: type[models.Model],
    field: str,
    values: list[Any],
    using: str,
) -> Any:
    owners = owner_model._default_manager.db_manager(using).all()
    rows = model._default_manager.db_manager(using).filter(
        **{f"{field}__in": values}, user__in=owners
    )
    # No ordering: at most one row has a given value, and sorting would cost the database.
    return next(iter(rows.select_related("user").order_by()[:1]), None)


@dataclass(frozen=True)
class Plan:
    """The SQL of one model, field, connection and number of values, and how to read its row."""

    connection: BaseDatabaseWrapper
    generation: int
    sql: str
    key_model: type[models.Model]
    key_attnames: tuple[str, ...]
    owner_model: type[models.Model]
    owner_attnames: tuple[str, ...]
    converters: tuple[Converter, ...]

    def fetch(self, values: Sequence[Any]) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, values)
            row = cursor.fetchone()
        if row is None:
            return None
        return self.instance(row)

    def instance(self, row: Sequence[Any]) -> Any:
        values = list(row)
        connection = self.connection
        for position, functions, expression in self.converters:
            value = values[position]
            for function in functions:
                value = function(value, expression, connection)
            values[position] = value
        db = connection.alias
        width = len(self.key_attnames)
        key: Any = self.key_model.from_db(db, self.key_attnames, values[:width])
        # Through the relation, as application code would: it caches the owner on the key.
        key.user = self.owner_model.from_db(db, self.owner_attnames, values[width:])
        return key


class _PerThread(threading.local):
    # Connection objects are per thread, and so is the SQL built for them.
    plans: dict[tuple[type[models.Model], str, str, int], Plan]

    def __init__(self) -> None:
        self.plans = {}


_built = _PerThread()
_generation = 0


@receiver(setting_changed)
def _rebuild_after_settings_change(**kwargs: Any) -> None:
    """DATABASES, AUTH_USER_MODEL or anything else may have changed what the SQL must be."""
    global _generation
    _generation += 1


def _plan(
    model: type[models.Model], field: str, connection: BaseDatabaseWrapper, size: int
) -> Plan | None:
    """The built SQL, reused while the connection object and the settings stay the same."""
    key = (model, field, connection.alias, size)
    plan = _built.plans.get(key)
    if plan is None or plan.connection is not connection or plan.generation != _generation:
        plan = _build(model, field, connection, size)
        if plan is not None:
            _built.plans[key] = plan
    return plan


def _build(
    model: type[models.Model], field: str, connection: BaseDatabaseWrapper, size: int
) -> Plan | None:
    """The SQL and converters; None when a model spans tables, which the ORM joins itself."""
    owner_model = _owner_model(model)
    if not (_one_table(model) and _one_table(owner_model)):
        return None
    key_fields, owner_fields = model._meta.concrete_fields, owner_model._meta.concrete_fields
    foreign_key: Any = model._meta.get_field("user")
    column = _column_namer(connection)
    select = ", ".join(column(field) for field in [*key_fields, *owner_fields])
    join = f"{column(foreign_key)} = {column(foreign_key.target_field)}"
    where = f"{column(model._meta.get_field(field))} IN ({', '.join(['%s'] * size)})"
    tables = [connection.ops.quote_name(m._meta.db_table) for m in (model, owner_model)]
    # Only quoted names from the models' metadata go into the text; values are parameters.
    sql = (
        f"SELECT {select} FROM {tables[0]} INNER JOIN {tables[1]} ON ({join})"  # noqa: S608
        f" WHERE {where} {connection.ops.limit_offset_sql(0, 1)}"
    )
    return Plan(
        connection=connection,
        generation=_generation,
        sql=sql,
        key_model=model,
        key_attnames=tuple(field.attname for field in key_fields),
        owner_model=owner_model,
        owner_attnames=tuple(field.attname for field in owner_fields),
        converters=_converters(connection, [*key_fields, *owner_fields]),
    )


def _column_namer(connection: BaseDatabaseWrapper) -> Callable[[Any], str]:
    quote = connection.ops.quote_name

    def column(field: Any) -> str:
        return f"{quote(field.model._meta.db_table)}.{quote(field.column)}"

    return column


def _one_table(model: type[models.Model]) -> bool:
    # A proxy's fields are its concrete model's, in the same table; a child's inherited fields
    # live in its parents' tables.
    table = model._meta.db_table
    return all(field.model._meta.db_table == table for field in model._meta.concrete_fields)


def _converters(
    connection: BaseDatabaseWrapper, fields: Sequence[models.Field[Any, Any]]
) -> tuple[Converter, ...]:
    """Per column, the backend's converters then the field's, as the ORM's compiler applies
    them; the column expression is what they are given (a foreign key's reads its target's
    type; SQLite's decimals read their places)."""
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(field.model._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((position, tuple(functions), column))
    return tuple(converters)
