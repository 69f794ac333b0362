"""A primary/replica database router, used when REPLICA_DATABASE_URL is set (see settings).

Reads go to "replica", writes and migrations to "default" (the primary). phoenix_apikeys does
not take the read database's word on keys: verification and every change of a key's state ask
router.db_for_write, so a replica that lags cannot accept a revoked key or refuse a new one.
"""

from __future__ import annotations

from typing import Any


class PrimaryReplicaRouter:
    def db_for_read(self, model: type, **hints: Any) -> str:
        return "replica"

    def db_for_write(self, model: type, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: object, obj2: object, **hints: Any) -> bool:
        return True  # one database, two connections: every object lives on the primary

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        return db == "default"  # the replica gets its tables by replication
