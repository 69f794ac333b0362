"""Who is acting, and from where: the context the audit trail (models.KeyEvent) records.

Entry points wrap their work in ``acting``; the key manager records each change with
``KeyEvent.objects.record``, inside the change's own transaction, taking the actor and source
from here unless given explicitly::

    with audit.acting(actor=request.user, source=address):
        UserKey.objects.revoke(key)  # a "revoked" event, by that user, from that address

Nested ``acting`` blocks inherit what they do not set. This module knows nothing of models, so
models can read it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import Any

from .scopes import ScopedUser

COMMAND = "command"
ADMIN_SECRET = "admin secret"
ANONYMOUS = "anonymous"


@dataclasses.dataclass(frozen=True)
class Acting:
    actor: Any = None  # a user, or None
    label: str | None = None  # what to call the actor when there is no user
    source: str | None = None  # the client's address

    @property
    def actor_label(self) -> str:
        user = self.actor
        if self.label:
            return self.label
        if user is not None and getattr(user, "is_authenticated", False):
            return str(user.get_username())
        return ANONYMOUS

    @property
    def actor_user(self) -> Any:
        """The user to point at: an authenticated, saved user, else None."""
        user = self.actor
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        if isinstance(user, ScopedUser):  # the user behind a scoped key's narrowed view
            user = user.unscoped
        return user if getattr(user, "pk", None) is not None else None


NOBODY = Acting()
_acting: contextvars.ContextVar[Acting | None] = contextvars.ContextVar(
    "phoenix_apikeys_acting", default=None
)


def current() -> Acting:
    """Who acts now, from where: what the innermost ``acting`` block set, else nobody known."""
    return _acting.get() or NOBODY


@contextlib.contextmanager
def acting(
    actor: Any = None,
    label: str | None = None,
    source: str | None = None,
) -> Iterator[Acting]:
    """Set who acts (a user; or ``label``: "command", "admin secret") and from where
    (``source``, a client address) for the block; unset values are inherited."""
    outer = current()
    given: dict[str, Any] = {"actor": actor, "label": label, "source": source}
    if actor is not None and label is None:
        given["label"] = ""  # a user named here wins over an outer label
    inner = dataclasses.replace(outer, **{k: v for k, v in given.items() if v is not None})
    token = _acting.set(inner)
    try:
        yield inner
    finally:
        _acting.reset(token)
