"""docs/api.md held to the code.

The document's tables are parsed and compared with what they describe: the route table with the
URL configuration and the OpenAPI schema, the permission matrix and the statuses every route may
answer with live requests, the body, object, pagination and settings tables with the schema and
the settings' defaults, the key format and ids with keys and ids the code makes.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.urls import URLPattern
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from phoenix_apikeys import urls
from phoenix_apikeys.conf import DEFAULTS
from phoenix_apikeys.ids import USER_TYPE, global_id, key_id
from phoenix_apikeys.keys import KeyKind
from phoenix_apikeys.models import SystemKey, UserKey

from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserFactory, UserKeyFactory

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
MOUNT = "/v1/"  # where the document mounts the routes; the schema's urlconf mounts them there
SCHEMA_URLCONF = "tests.testapp.api_urls"
# The defaults as the code ships them: taken at import, before conftest lifts FAILED_AUTH_LIMIT.
SHIPPED_DEFAULTS = dict(DEFAULTS)
NONE = "—"


# reading the document


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@cache
def tables() -> list[list[list[str]]]:
    """Every table in the document: its rows of cells, the header first."""
    found: list[list[list[str]]] = []
    lines = DOC.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        is_table = (
            line.startswith("|")
            and index + 1 < len(lines)
            and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1].strip()) is not None
        )
        if not is_table:
            index += 1
            continue
        rows = [_cells(line)]
        index += 2
        while index < len(lines) and lines[index].startswith("|"):
            rows.append(_cells(lines[index]))
            index += 1
        found.append(rows)
    return found


def table(*header: str) -> list[dict[str, str]]:
    """The one table whose header starts with ``header``, as dicts keyed by header cell."""
    matches = [rows for rows in tables() if tuple(rows[0][: len(header)]) == header]
    assert len(matches) == 1, f"expected one table headed {header}, found {len(matches)}"
    head, *body = matches[0]
    for row in body:
        assert len(row) == len(head), f"row {row} does not fit header {head}"
    return [dict(zip(head, row, strict=True)) for row in body]


def plain(cell: str) -> str:
    return cell.replace("`", "").strip()


def codes(cell: str) -> set[int]:
    return {int(code) for code in re.findall(r"\b\d{3}\b", cell)}


def route_rows() -> list[dict[str, str]]:
    return table("Method", "Path", "Operation id", "Statuses")


def documented_operations() -> list[tuple[str, str]]:
    return [(plain(row["Method"]), plain(row["Path"])) for row in route_rows()]


def documented_statuses() -> dict[tuple[str, str], set[int]]:
    return {
        (plain(row["Method"]), plain(row["Path"])): codes(row["Statuses"]) for row in route_rows()
    }


# what the code says


def urlconf_operations() -> set[tuple[str, str]]:
    """Every (method, path) the URLconf routes to a handler; OPTIONS and HEAD are DRF's own."""
    found = set()
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        path = MOUNT + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        view_class = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in view_class.http_method_names:
            if method not in ("options", "head") and hasattr(view_class, method):
                found.add((method.upper(), path))
    return found


@cache
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator(urlconf=SCHEMA_URLCONF).get_schema(public=True)
    return generated


def schema_operation(method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = schema()["paths"][path][method.lower()]
    return operation


# routes and statuses


def test_the_route_table_is_every_route_of_the_urlconf() -> None:
    documented = documented_operations()
    assert len(documented) == len(set(documented)), "a route is listed twice"
    assert set(documented) == urlconf_operations()


def test_the_route_table_is_every_operation_of_the_schema() -> None:
    in_schema = {
        (method.upper(), path)
        for path, operations in schema()["paths"].items()
        for method in operations
    }
    assert set(documented_operations()) == in_schema


@pytest.mark.parametrize(("method", "path"), documented_operations())
def test_a_routes_statuses_and_operation_id_are_the_schemas(method: str, path: str) -> None:
    row = next(r for r in route_rows() if (plain(r["Method"]), plain(r["Path"])) == (method, path))
    operation = schema_operation(method, path)
    assert codes(row["Statuses"]) == {int(code) for code in operation["responses"]}
    assert plain(row["Operation id"]) == operation["operationId"]


# the statuses every route may answer, provoked on every route


EVERY_ROUTE_HEADER = ("Status", "Header", "When")


def every_route_statuses() -> dict[int, str]:
    return {int(row["Status"]): plain(row["Header"]) for row in table(*EVERY_ROUTE_HEADER)}


def concrete(path: str) -> str:
    return path.replace("{id}", "not-an-id")


def provoke_400(client: APIClient, method: str, path: str, **_: Any) -> Any:
    query = "&".join(f"p{number}=1" for number in range(1500))
    return client.generic(method, f"{concrete(path)}?{query}")


def provoke_405(client: APIClient, method: str, path: str, **_: Any) -> Any:
    return client.put(concrete(path))


def provoke_429(client: APIClient, method: str, path: str, *, settings: Any, **_: Any) -> Any:
    settings.PHOENIX_APIKEYS = {"FAILED_AUTH_LIMIT": 1, "FAILED_AUTH_WINDOW": 77}
    failed = APIClient().get(MOUNT + "user", HTTP_AUTHORIZATION="Bearer phxu_guess")
    assert failed.status_code == 401
    # The credential is valid (the admin secret), but verifying it needs the database.
    return client.generic(method, concrete(path))


def provoke_503(client: APIClient, method: str, path: str, *, monkeypatch: Any, **_: Any) -> Any:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {UserKeyFactory().plaintext}")

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("the database is down")

    monkeypatch.setattr(CursorWrapper, "execute", unavailable)
    return client.generic(method, concrete(path))


PROVOKE = {400: provoke_400, 405: provoke_405, 429: provoke_429, 503: provoke_503}


def test_the_statuses_on_every_route_are_those_this_test_provokes() -> None:
    assert set(every_route_statuses()) == set(PROVOKE)


def test_the_statuses_on_every_route_are_not_in_any_routes_own_list() -> None:
    """The document says they are neither in a route's list nor in the schema."""
    for operation, statuses in documented_statuses().items():
        in_schema = {int(code) for code in schema_operation(*operation)["responses"]}
        assert not statuses & set(every_route_statuses()), operation
        assert not in_schema & set(every_route_statuses()), operation


@pytest.mark.django_db
@pytest.mark.parametrize("status", sorted(PROVOKE))
@pytest.mark.parametrize(("method", "path"), documented_operations())
def test_every_route_answers_the_statuses_it_may_always_answer(
    admin_secret: str,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    status: int,
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
    response = PROVOKE[status](client, method, path, settings=settings, monkeypatch=monkeypatch)
    assert response.status_code == status
    header = every_route_statuses()[status]
    if header != NONE:
        assert response.has_header(header), f"{status} without {header}"
    if status == 429:
        assert response["Retry-After"] == "77"  # FAILED_AUTH_WINDOW, as the settings table says
    assert response.json()["detail"]


# who may call what, every documented cell requested


MATRIX_HEADER = ("Route", "Target", "Permission")
CREATED_NAME = "made by the documented matrix"


def matrix_rows() -> list[dict[str, str]]:
    return table(*MATRIX_HEADER)


def matrix_callers() -> list[str]:
    rows = matrix_rows()
    return [name for name in rows[0] if name not in MATRIX_HEADER]


def matrix_cells() -> list[tuple[str, str, str, str, str | None, int]]:
    """(caller, method, path, target, permission, status) for every documented cell."""
    cells = []
    for row in matrix_rows():
        method, path = plain(row["Route"]).split(" ", 1)
        permission = None if row["Permission"] == NONE else plain(row["Permission"])
        for who in matrix_callers():
            if row[who] != NONE:
                cells.append((who, method, path, plain(row["Target"]), permission, int(row[who])))
    return cells


def staff_with(permission: str | None) -> Any:
    user = StaffFactory()
    if permission is not None:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="phoenix_apikeys", codename=permission)
        )
    return user


def login(user: Any) -> tuple[APIClient, Any]:
    client = APIClient()
    client.force_login(user)
    return client, user


def with_key_of(user: Any) -> tuple[APIClient, Any]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {UserKeyFactory(user=user).plaintext}")
    return client, user


def caller(name: str, permission: str | None, admin_secret: str) -> tuple[APIClient, Any]:
    """A client that calls as ``name``, and the user whose keys are its own (None: nobody's)."""
    if name == "anon":
        return APIClient(), None
    if name == "person":
        return login(UserFactory())
    if name == "staff":
        return login(staff_with(None))
    if name == "staff+perm":
        return login(staff_with(permission))
    if name == "super":
        return login(SuperuserFactory())
    if name == "person key":
        return with_key_of(UserFactory())
    if name == "staff+perm key":
        return with_key_of(staff_with(permission))
    if name == "super key":
        return with_key_of(SuperuserFactory())
    client = APIClient()
    if name == "system key":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {SystemKeyFactory().plaintext}")
        return client, None
    if name == "admin secret":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
        return client, None
    raise AssertionError(f"the document names a caller this test does not know: {name!r}")


KNOWN_CALLERS = {
    "anon",
    "person",
    "staff",
    "staff+perm",
    "super",
    "person key",
    "staff+perm key",
    "super key",
    "system key",
    "admin secret",
}


def target(name: str, owner: Any) -> UserKey | SystemKey | None:
    if name == NONE:
        return None
    if name == "own key":  # anonymous owns nothing: any user key, for a 401 whatever it is
        return UserKeyFactory(user=owner) if owner else UserKeyFactory()  # type: ignore[no-any-return]
    if name == "other's key":
        return UserKeyFactory()  # type: ignore[no-any-return]
    if name == "system key":
        return SystemKeyFactory()  # type: ignore[no-any-return]
    raise AssertionError(f"the document names a target this test does not know: {name!r}")


def test_the_matrix_covers_every_route_and_every_caller() -> None:
    in_matrix = {tuple(plain(row["Route"]).split(" ", 1)) for row in matrix_rows()}
    assert in_matrix == set(documented_operations())
    assert set(matrix_callers()) == KNOWN_CALLERS
    for row in matrix_rows():
        has_id = "{id}" in row["Route"]
        assert (row["Target"] != NONE) == has_id, row["Route"]
        assert all(row[name] != NONE for name in KNOWN_CALLERS - {"system key", "admin secret"})


def test_every_status_in_the_matrix_is_one_its_route_lists() -> None:
    statuses = documented_statuses()
    for _, method, path, _, _, expected in matrix_cells():
        assert expected in statuses[(method, path)], (method, path, expected)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "method", "path", "target_name", "permission", "expected"),
    matrix_cells(),
    ids=[f"{cell[0]} {cell[1]} {cell[2]} {cell[3]} -> {cell[5]}" for cell in matrix_cells()],
)
def test_the_documented_matrix(
    admin_secret: str,
    who: str,
    method: str,
    path: str,
    target_name: str,
    permission: str | None,
    expected: int,
) -> None:
    client, owner = caller(who, permission, admin_secret)
    key = target(target_name, owner)
    url = path if key is None else path.replace("{id}", key_id(key.kind, key.pk))
    body = {"data": {"name": CREATED_NAME}} if method == "POST" else None
    data = "" if body is None else json.dumps(body)
    response = client.generic(method, url, data=data, content_type="application/json")
    assert response.status_code == expected, response.content
    if expected == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    if method == "POST":
        made = UserKey.objects.filter(name=CREATED_NAME).count()
        made += SystemKey.objects.filter(name=CREATED_NAME).count()
        if key is not None:  # a rotation: the new key takes the old one's name
            made = type(key)._default_manager.filter(name=key.name).exclude(pk=key.pk).count()
        assert made == (1 if expected == 201 else 0)
        if expected == 201:
            assert response["Cache-Control"] == "no-store"
    if key is not None:
        still_there = type(key)._default_manager.filter(pk=key.pk).exists()
        assert still_there == (expected != 204)


# bodies, objects, pagination


def test_the_body_table_is_the_schemas_create_fields() -> None:
    component = schema()["components"]["schemas"]["KeyCreate"]
    rows = {plain(row["Field"]): row for row in table("Field", "Type", "Required", "Max length")}
    assert set(rows) == set(component["properties"])
    assert {name for name, row in rows.items() if row["Required"] == "yes"} == set(
        component["required"]
    )
    for name, row in rows.items():
        field = component["properties"][name]
        if field.get("type") == "array":  # "<items> items of <length>"
            items, length = (int(number) for number in re.findall(r"\d+", row["Max length"]))
            assert (items, length) == (field["maxItems"], field["items"]["maxLength"]), name
            continue
        documented = None if row["Max length"] == NONE else int(row["Max length"])
        assert documented == field.get("maxLength"), name


def test_the_object_table_is_the_schemas_components() -> None:
    components = schema()["components"]["schemas"]
    key_fields = set(components["Key"]["properties"])
    for row in table("Object", "Schema component", "Fields"):
        fields = set(re.findall(r"`(\w+)`", row["Fields"]))
        if "the key fields" in row["Fields"]:
            fields |= key_fields
        assert fields == set(components[plain(row["Schema component"])]["properties"]), row


def test_the_pagination_table_is_the_schemas_query() -> None:
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in schema_operation("GET", MOUNT + "users/api_keys")["parameters"]
    }
    rows = {plain(row["Query parameter"]): row for row in table("Query parameter", "Values")}
    assert set(rows) == set(parameters)
    low, high = (int(number) for number in re.findall(r"\d+", rows["limit"]["Values"]))
    limit = parameters["limit"]
    assert (low, high, int(rows["limit"]["Default"])) == (
        limit["minimum"],
        limit["maximum"],
        limit["default"],
    )
    assert f"at most {parameters['cursor']['maxLength']} characters" in rows["cursor"]["Values"]


# keys, ids, settings


@pytest.mark.django_db
def test_the_key_format_matches_keys_the_code_makes() -> None:
    text = DOC.read_text(encoding="utf-8")
    pattern = re.search(r"`(\\b\(\?:[^`]+)`", text)
    length = re.search(r"(\d+) with the default prefixes", text)
    assert pattern is not None and length is not None
    for key in (UserKeyFactory(), SystemKeyFactory()):
        assert re.fullmatch(pattern.group(1), key.plaintext), key.plaintext
        assert len(key.plaintext) == int(length.group(1))
    assert UserKeyFactory().plaintext.startswith(SHIPPED_DEFAULTS["USER_KEY_PREFIX"])


def test_the_id_examples_are_ids_the_code_makes() -> None:
    made = {
        "SystemApiKey": lambda pk: key_id(KeyKind.SYSTEM, pk),
        "UserApiKey": lambda pk: key_id(KeyKind.USER, pk),
        USER_TYPE: lambda pk: global_id(USER_TYPE, pk),
    }
    rows = table("Type", "Names", "Example")
    assert {plain(row["Type"]) for row in rows} == set(made)
    for row in rows:
        example, decoded = re.findall(r"`([^`]+)`", row["Example"])
        assert base64.b64decode(example).decode() == decoded
        type_name, pk = decoded.split(":")
        assert type_name == plain(row["Type"])
        assert made[type_name](int(pk)) == example


def test_the_settings_table_is_every_setting_with_its_default() -> None:
    rows = {plain(row["Setting"]): row["Default"] for row in table("Setting", "Default")}
    assert set(rows) == set(SHIPPED_DEFAULTS)
    for name, default in rows.items():
        value = eval(plain(default), {"__builtins__": {}, "timedelta": timedelta})
        assert value == SHIPPED_DEFAULTS[name], name
