"""The layers of the package, checked from its source: each module imports only modules of
lower layers, and the entry points never import one another.

    core         keys, ids, rules, scopes, signals, lookup -> conf, audit -> coherence,
                 notifications -> cache -> models, throttle -> receivers, verification
    adapters     http (Django requests), permissions and authentication (DRF)
    entry points middleware | ninja | metrics | REST API (api, serializers, urls, openapi) | admin
                 | checks | management commands
    wiring       apps (its ready() loads the checks, the receivers and the admin integration)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "phoenix_apikeys"

RANKS = {
    "keys": 0,
    "signals": 0,
    "lookup": 0,
    "ids": 1,
    "rules": 1,
    "scopes": 1,
    "conf": 2,
    "audit": 2,  # who acts, from where: models record it with each change
    "coherence": 3,  # each process's memory of keys, kept coherent through Redis
    "notifications": 3,  # who is told about a key, and the leak email
    "cache": 4,
    "models": 5,
    "throttle": 5,
    "receivers": 6,
    "verification": 6,
    "http": 7,
    "permissions": 7,
    "authentication": 8,
}
ENTRY_POINT_RANK = 9
# Modules of one entry point may import each other; different entry points may not.
ENTRY_POINTS = {
    "middleware": "middleware",
    "ninja": "ninja",
    "metrics": "metrics",
    "api": "rest",
    "serializers": "rest",
    "urls": "rest",
    "openapi": "rest",
    "admin": "admin",
    "checks": "checks",
    "install_checks": "checks",
    "management": "commands",
}
WIRING = "apps"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(part for part in parts if part != "__init__")


def top(name: str) -> str:
    return name.split(".")[0]


def imported_modules(path: Path) -> set[str]:
    """Every phoenix_apikeys module ``path`` imports, at module level or inside a function."""
    name = module_name(path)
    package_parts = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("phoenix_apikeys"):
                target = node.module.removeprefix("phoenix_apikeys").lstrip(".")
            else:
                continue
            if target:
                found.add(target)
            else:  # "from . import x"
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.removeprefix("phoenix_apikeys.")
                for alias in node.names
                if alias.name.startswith("phoenix_apikeys.")
            )
    return {target for target in found if target}


def rank(name: str) -> int:
    if top(name) == WIRING:
        return ENTRY_POINT_RANK + 1
    return RANKS.get(top(name), ENTRY_POINT_RANK)


def violations(name: str, targets: set[str]) -> list[str]:
    """What is wrong with module ``name`` importing ``targets``."""
    found = []
    for target in sorted(targets):
        if top(target) == top(name):
            continue  # within one module or package
        if rank(name) == rank(target) == ENTRY_POINT_RANK:
            if ENTRY_POINTS[top(name)] != ENTRY_POINTS[top(target)]:
                found.append(f"entry point {name} imports entry point {target}")
        elif rank(target) >= rank(name):
            found.append(f"{name} (layer {rank(name)}) imports {target} (layer {rank(target)})")
    return found


MODULES = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if "migrations" not in path.parts and path != PACKAGE / "__init__.py"
)


def test_every_module_has_a_layer() -> None:
    names = {top(module_name(path)) for path in MODULES}
    known = set(RANKS) | set(ENTRY_POINTS) | {WIRING}
    assert names <= known, names - known


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_go_down_the_layers(path: Path) -> None:
    name = module_name(path)
    assert violations(name, imported_modules(path)) == []


def test_the_checker_reports_what_goes_up_or_across() -> None:
    assert violations("keys", {"models"}) == ["keys (layer 0) imports models (layer 5)"]
    assert violations("api", {"middleware", "serializers", "authentication"}) == [
        "entry point api imports entry point middleware"
    ]
    assert violations("cache", {"throttle"}) == ["cache (layer 4) imports throttle (layer 5)"]
    assert imported_modules(PACKAGE / "verification.py") >= {"models", "keys", "cache"}
