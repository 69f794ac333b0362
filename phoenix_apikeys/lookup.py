"""Verification's one query: the key whose digest is a candidate, with its owner joined.

Building and compiling a queryset costs several times what the database needs to answer this
indexed query, and verification runs it on every request the cache cannot answer. So, when the
ORM would add nothing to a plain join, the SQL is written here from the models' ``_meta``
(tables, columns, the foreign key's target) and the backend's quoting, once per key model,
connection and number of candidate digests. Each row becomes instances through
``Model.from_db``, the owner set on the key through its relation, so callers get what the ORM
would have given them: only documented API is used (``_meta``, ``quote_name``, ``from_db``,
``get_internal_type``).

"The ORM would add nothing" means: neither the key model's nor the owner model's default
manager overrides ``get_queryset``, each model lives in one table (no multi-table
inheritance), and every column is of a type the driver returns as the ORM gives it
(``PLAIN_TYPES``). Otherwise a manager may filter (per tenant, per request, soft deletion) and only
the ORM knows how, so the same question is asked through it, still as one query: keys of the
key model's default manager, owned by a user its model's default manager returns.

Built SQL belongs to one connection object and one generation of settings: a new connection,
or any setting changing (DATABASES, AUTH_USER_MODEL, ...), builds it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import receiver
from django.utils import timezone

Normaliser = tuple[int, Callable[[Any], Any]]

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
    normalisers: tuple[Normaliser, ...]

    def fetch(self, values: Sequence[Any]) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, values)
            row = cursor.fetchone()
        if row is None:
            return None
        return self.instance(row)

    def instance(self, row: Sequence[Any]) -> Any:
        values = list(row)
        for position, normalise in self.normalisers:
            if values[position] is not None:
                values[position] = normalise(values[position])
        connection = self.connection
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
    """The SQL and how to read its row; None when a model spans tables (the ORM joins them) or
    has a column the driver does not return as the ORM would."""
    owner_model = _owner_model(model)
    if not (_one_table(model) and _one_table(owner_model)):
        return None
    key_fields, owner_fields = model._meta.concrete_fields, owner_model._meta.concrete_fields
    normalisers = _normalisers([*key_fields, *owner_fields])
    if normalisers is None:
        return None
    foreign_key: Any = model._meta.get_field("user")
    column = _column_namer(connection)
    select = ", ".join(column(field) for field in [*key_fields, *owner_fields])
    join = f"{column(foreign_key)} = {column(foreign_key.target_field)}"
    where = f"{column(model._meta.get_field(field))} IN ({', '.join(['%s'] * size)})"
    tables = [connection.ops.quote_name(m._meta.db_table) for m in (model, owner_model)]
    # Only quoted names from the models' metadata go into the text; values are parameters. No
    # LIMIT: ``field`` is unique.
    sql = f"SELECT {select} FROM {tables[0]} INNER JOIN {tables[1]} ON ({join}) WHERE {where}"  # noqa: S608
    return Plan(
        connection=connection,
        generation=_generation,
        sql=sql,
        key_model=model,
        key_attnames=tuple(field.attname for field in key_fields),
        owner_model=owner_model,
        owner_attnames=tuple(field.attname for field in owner_fields),
        normalisers=normalisers,
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


# Column types a database driver, through Django's connection, returns as the ORM gives them,
# but for the two normalisations below (datetimes aware in UTC under USE_TZ, as Django stores
# them where the database has no time zones; booleans as bool where they come back as 0 or 1).
# A model with a column of any other type, or a field that converts values itself
# (``from_db_value``), is read through the ORM.
PLAIN_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
        "CharField",
        "TextField",
        "SlugField",
        "BooleanField",
        "DateTimeField",
    }
)


def _aware(value: Any) -> Any:
    return value.replace(tzinfo=dt_timezone.utc) if timezone.is_naive(value) else value


def _normalisers(fields: Sequence[models.Field[Any, Any]]) -> tuple[Normaliser, ...] | None:
    found: list[Normaliser] = []
    for position, field in enumerate(fields):
        stored: Any = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
        kind = stored.get_internal_type()
        if kind not in PLAIN_TYPES or hasattr(field, "from_db_value"):
            return None
        if kind == "DateTimeField" and settings.USE_TZ:
            found.append((position, _aware))
        elif kind == "BooleanField":
            found.append((position, bool))
    return tuple(found)
