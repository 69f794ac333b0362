"""Scopes: what a key may do, when it may do less than its owner.

A key with no scopes carries its owner's whole authority. A scoped key lists some of:

- ``read``: only safe methods (GET, HEAD, OPTIONS) authenticate for work; any other method is
  refused with 403 by the DRF class and the middleware alike.
- Django permissions, ``"app_label.codename"``: the key's ``request.user.has_perm(p)`` is true
  only when the key lists ``p`` *and* its owner has ``p`` now, so ``DjangoModelPermissions``,
  ``permission_required`` and the host's own ``has_perm`` checks narrow with no change. A scoped
  key lists no other permission, so one scoped only to ``read`` has none; its owner's superuser
  status is not inherited.

Scopes are stored on the key row as one space-separated string (as OAuth 2 writes them), so they
travel with the key through the one verification query and the cache, at no extra cost.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

READ = "read"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SCOPES = 100
MAX_SCOPE_LENGTH = 255
PERMISSION = re.compile(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+")


def parse(text: str) -> tuple[str, ...]:
    """The scopes of a stored string, in their stored (sorted) order."""
    return tuple(text.split())


def join(scopes: Iterable[str]) -> str:
    """The stored form: unique, sorted, space-separated."""
    return " ".join(sorted(set(scopes)))


def problems(scopes: Iterable[Any]) -> list[str]:
    """What is wrong with a list of scopes before any query; empty when each is well formed."""
    found = []
    scopes = list(scopes)
    if len(scopes) > MAX_SCOPES:
        found.append(f"A key may have at most {MAX_SCOPES} scopes.")
    for scope in scopes:
        if not isinstance(scope, str):
            found.append("Each scope must be a string.")
        elif scope != READ and not (len(scope) <= MAX_SCOPE_LENGTH and PERMISSION.fullmatch(scope)):
            shown = scope if len(scope) <= 40 else scope[:40] + "…"
            found.append(
                f'Scope "{shown}" is neither "read" nor a permission such as "app_label.codename".'
            )
    return found


def permissions(scopes: Iterable[str]) -> frozenset[str]:
    return frozenset(scope for scope in scopes if scope != READ)


def method_refusal(scopes: Iterable[str], method: str | None) -> str | None:
    """Why a key with these scopes may not make a ``method`` request; None when it may."""
    if READ in scopes and (method or "").upper() not in SAFE_METHODS:
        return f'This key is read-only (scope "{READ}"): only GET, HEAD and OPTIONS.'
    return None


class OutOfScope(Exception):
    """A scoped key asked for more than its scopes allow: 403, never a 401 (the key is good)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ScopedUser:
    """The owner as a scoped key presents it.

    The same user for everything else (``isinstance``, ``pk``, ORM filters, ``save``): every
    attribute is the owner's, as Django's own lazy ``request.user`` does it; but its permissions
    are those the key lists and the owner still has, and it is neither superuser nor staff. A
    copy or a pickle of it (a task queue's payload, say) stays scoped. Code that asks the owner
    directly (``scoped.unscoped``) sees the owner's whole authority.
    """

    is_superuser = False
    is_staff = False
    unscoped: Any
    granted: frozenset[str]

    def __init__(self, owner: Any, granted: frozenset[str]) -> None:
        object.__setattr__(self, "unscoped", owner)
        object.__setattr__(self, "granted", granted)

    # The owner's class, so isinstance() and the ORM take it for the owner.
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self.unscoped)

    def __getattr__(self, name: str) -> Any:  # only for what this class does not define
        return getattr(self.unscoped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.unscoped, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.unscoped, name)

    def __eq__(self, other: Any) -> bool:
        return bool(self.unscoped == other)

    def __hash__(self) -> int:
        return hash(self.unscoped)

    def __str__(self) -> str:
        return str(self.unscoped)

    def __repr__(self) -> str:
        return f"<ScopedUser: {self.unscoped!r}>"

    def __reduce__(self) -> Any:
        return (ScopedUser, (self.unscoped, self.granted))

    def __copy__(self) -> ScopedUser:
        return ScopedUser(copy.copy(self.unscoped), self.granted)

    def __deepcopy__(self, memo: dict[int, Any]) -> ScopedUser:
        return ScopedUser(copy.deepcopy(self.unscoped, memo), self.granted)

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return perm in self.granted and bool(self.unscoped.has_perm(perm, obj))

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        if isinstance(perm_list, str):  # as Django's own has_perms refuses
            raise ValueError("perm_list must be an iterable of permissions.")
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        mine = any(perm.partition(".")[0] == app_label for perm in self.granted)
        return mine and bool(self.unscoped.has_module_perms(app_label))

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set(self.unscoped.get_all_permissions(obj)) & self.granted

    def get_user_permissions(self, obj: Any = None) -> set[str]:
        return set(self.unscoped.get_user_permissions(obj)) & self.granted

    def get_group_permissions(self, obj: Any = None) -> set[str]:
        return set(self.unscoped.get_group_permissions(obj)) & self.granted
