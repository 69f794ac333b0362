"""Every user-facing string of the package is marked for translation.

A scanner reads the package's source with ``ast`` and reports string literals left unmarked
where a person reads them: system check messages and hints, validation errors, DRF refusals,
admin messages, labels and help texts, command help, ``{"detail": ...}`` bodies. It also
reports an f-string or a concatenation inside ``gettext`` (the catalog would hold a different
msgid for every value) and an English plural made inline (``'' if n == 1 else 's'``), which
``ngettext`` does for every language. Log messages and machine-facing values (JSON keys, error
codes, check ids) are not looked at. The scanner's own tests below show it finds each case.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "phoenix_apikeys"

# Calls that mark a string for translation.
MARKERS = frozenset(
    {
        "_",
        "gettext",
        "gettext_lazy",
        "ngettext",
        "ngettext_lazy",
        "pgettext",
        "pgettext_lazy",
        "npgettext",
        "npgettext_lazy",
    }
)
# django.core.checks' messages: the first argument and hint= are read by a person.
CHECK_MESSAGES = frozenset({"Error", "Warning", "Critical", "Info", "Debug"})
# Exceptions whose first argument (or detail=/message=) reaches a person.
USER_EXCEPTIONS = frozenset(
    {
        "ValidationError",
        "NotFound",
        "PermissionDenied",
        "AuthenticationFailed",
        "NotAuthenticated",
        "ParseError",
        "Throttled",
        "CommandError",
    }
)
MESSAGE_LEVELS = frozenset({"debug", "info", "success", "warning", "error"})
# Keyword arguments a person reads: labels, help texts, descriptions (admin, forms, fields,
# OpenAPI, argparse).
TEXT_KEYWORDS = frozenset(
    {"verbose_name", "verbose_name_plural", "help_text", "description", "label", "help"}
)
# Class attributes a person reads: model Meta names, command help, list filter titles, DRF
# permission messages and exception details.
TEXT_ATTRIBUTES = frozenset(
    {"verbose_name", "verbose_name_plural", "help", "title", "message", "default_detail"}
)


@dataclass(frozen=True)
class Finding:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


def _name(node: ast.expr) -> str | None:
    """``f`` for ``f(...)``, ``attr`` for ``x.attr(...)``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_marked(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):
        return _name(node.func) in MARKERS
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _is_marked(node.left)  # gettext("... %(x)s") % values
    return False


def _has_words(text: str) -> bool:
    return any(char.isalpha() for char in text)


def is_unmarked_text(node: ast.expr | None) -> bool:
    """A literal a person would read, not passed through a gettext function: a string, an
    f-string, or text built from them (``+``, ``%``, a conditional, a list, a dict's values)."""
    if node is None or _is_marked(node):
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and _has_words(node.value)
    if isinstance(node, ast.JoinedStr):
        return any(
            isinstance(part, ast.Constant) and _has_words(str(part.value)) for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return is_unmarked_text(node.left) or is_unmarked_text(node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return is_unmarked_text(node.left)
    if isinstance(node, ast.IfExp):
        return is_unmarked_text(node.body) or is_unmarked_text(node.orelse)
    if isinstance(node, (ast.List, ast.Tuple)):
        return any(is_unmarked_text(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return any(is_unmarked_text(value) for value in node.values)
    return False


def _first_argument(call: ast.Call, *keywords: str) -> ast.expr | None:
    if call.args and not isinstance(call.args[0], ast.Starred):
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg in keywords), None)


def _is_inline_plural(node: ast.expr) -> bool:
    """``'' if n == 1 else 's'`` and ``'s' * (n != 1)``: English plurals ngettext should make."""
    suffixes = {"", "s", "es"}
    if isinstance(node, ast.IfExp):
        branches = (node.body, node.orelse)
        return all(isinstance(b, ast.Constant) and b.value in suffixes for b in branches)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        sides = (node.left, node.right)
        return any(isinstance(s, ast.Constant) and s.value in {"s", "es"} for s in sides)
    return False


class Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def report(self, node: ast.AST, problem: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0), problem))

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if name in CHECK_MESSAGES:
            if is_unmarked_text(_first_argument(node, "msg")):
                self.report(node, f"unmarked message of a check {name}")
            hint = next((k.value for k in node.keywords if k.arg == "hint"), None)
            if is_unmarked_text(hint):
                self.report(node, f"unmarked hint of a check {name}")
        if name in USER_EXCEPTIONS and is_unmarked_text(_first_argument(node, "detail", "message")):
            self.report(node, f"unmarked text in {name}(...)")
        if name in MESSAGE_LEVELS and isinstance(node.func, ast.Attribute):
            owner = _name(node.func.value)
            if owner == "messages" and len(node.args) > 1 and is_unmarked_text(node.args[1]):
                self.report(node, f"unmarked admin message messages.{name}(...)")
        if (
            name == "message_user"
            and node.args
            and is_unmarked_text(node.args[1:2][0] if len(node.args) > 1 else None)
        ):
            self.report(node, "unmarked admin message message_user(...)")
        if name == "add_error" and len(node.args) > 1 and is_unmarked_text(node.args[1]):
            self.report(node, "unmarked form error add_error(...)")
        for keyword in node.keywords:
            if keyword.arg in TEXT_KEYWORDS and is_unmarked_text(keyword.value):
                self.report(keyword.value, f"unmarked {keyword.arg}=")
        if name in MARKERS and node.args:
            text = node.args[0]
            if not isinstance(text, ast.Constant):
                self.report(node, f"{name}() of something other than one literal (an f-string?)")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "detail":
                if is_unmarked_text(value):
                    self.report(value, 'unmarked {"detail": ...} text')
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            names = {_name(target) for target in targets}
            if names & TEXT_ATTRIBUTES and is_unmarked_text(value):
                self.report(
                    statement, f"unmarked class attribute {', '.join(sorted(names - {None}))}"
                )
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        if _is_inline_plural(node):
            self.report(node, "an English plural made inline: use ngettext")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if _is_inline_plural(node):
            self.report(node, "an English plural made inline: use ngettext")
        self.generic_visit(node)


def scan(source: str) -> list[Finding]:
    scanner = Scanner()
    scanner.visit(ast.parse(source))
    return scanner.findings


def package_sources() -> list[Path]:
    """The package's modules; migrations record history and are never translated."""
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    )


def test_every_user_facing_string_of_the_package_is_marked() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {finding}"
        for path in package_sources()
        for finding in scan(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "\n".join(found)


def test_the_scan_reads_the_whole_package() -> None:
    paths = {str(path.relative_to(PACKAGE)) for path in package_sources()}
    assert {"rules.py", "checks/settings.py", "admin/keys.py", "rest/base.py"} <= paths
    assert "management/commands/rotate_api_key.py" in paths
    assert not any(path.startswith("migrations") for path in paths)


# The scanner itself: each unmarked case is found, and its marked twin is not. -----------------

UNMARKED = {
    "check message": 'Error("Something is wrong.", id="app.E001")',
    "check f-string": 'Warning(f"Cache {name!r} is slow.", id="app.W001")',
    "check hint": 'Error(gettext("Broken."), hint="Fix it.", id="app.E001")',
    "check concatenation": 'Error("PHOENIX_SECRET " + "is missing.", id="app.E001")',
    "validation error": 'raise ValidationError("Name must not be blank.")',
    "validation error dict": 'raise ValidationError({"name": "Name must not be blank."})',
    "validation error list": 'raise ValidationError({"scopes": [f"No {scope}."]})',
    "drf not found": 'raise NotFound("No such API key.")',
    "drf permission denied": 'raise PermissionDenied(detail="Not yours.")',
    "command error": 'raise CommandError(f"No key {value!r}.")',
    "admin message": 'messages.error(request, "That key was revoked.")',
    "message_user": 'self.message_user(request, "Select one key.", messages.WARNING)',
    "form error": 'form.add_error("username", "This name is reserved.")',
    "help_text": 'models.CharField(max_length=8, help_text="The client\'s address.")',
    "verbose_name": 'models.CharField(verbose_name="name")',
    "label": 'forms.BooleanField(label="Read only")',
    "display description": '@admin.display(description="key")\ndef key(self, obj): pass',
    "argparse help": 'parser.add_argument("--name", help="what the key is for")',
    "command help": 'class Command(BaseCommand):\n    help = "Prune expired keys."',
    "meta verbose_name": 'class Meta:\n    verbose_name = "key event"',
    "permission message": 'class IsAdmin(BasePermission):\n    message = "Admins only."',
    "exception detail": 'class Gone(APIException):\n    default_detail = "Gone for good."',
    "detail body": 'Response({"detail": "The database is unavailable."}, status=503)',
    "detail f-string": 'Response({"detail": f"{error} Retry in {wait} seconds."})',
    "conditional text": 'Error("Too long." if long else "Too short.", id="app.E001")',
    "f-string in gettext": 'gettext(f"Key {key_id} expired.")',
    "concatenation in gettext": 'gettext("Key " + key_id)',
    "inline plural": "text = f\"{count} key{'' if count == 1 else 's'}\"",
    "inline plural by product": "text = f\"{count} key{'s' * (count != 1)}\"",
}

MARKED = {
    "check message": 'Error(gettext("Something is wrong."), id="app.E001")',
    "check f-string": 'Warning(gettext("Cache %(name)s is slow.") % {"name": repr(n)}, id="x")',
    "check hint": 'Error(gettext("Broken."), hint=gettext("Fix it."), id="app.E001")',
    "check from elsewhere": "Error(str(problem), hint=problem.hint, id=problem.id)",
    "validation error": 'raise ValidationError(gettext("Name must not be blank."))',
    "validation error dict": 'raise ValidationError({"name": gettext("Name must not be blank.")})',
    "validation error list": 'raise ValidationError({"scopes": [gettext("No %(s)s.") % v]})',
    "drf not found": 'raise NotFound(gettext("No such API key."))',
    "command error": "raise CommandError(str(error))",
    "admin message": 'messages.error(request, gettext("That key was revoked."))',
    "message_user": "self.message_user(request, str(error), messages.ERROR)",
    "help_text": 'models.CharField(max_length=8, help_text=_("The client\'s address."))',
    "display description": '@admin.display(description=_("key"))\ndef key(self, obj): pass',
    "argparse help": 'parser.add_argument("--name", help=gettext("what the key is for"))',
    "command help": 'class Command(BaseCommand):\n    help = _("Prune expired keys.")',
    "detail body": 'Response({"detail": gettext("The database is unavailable.")})',
    "detail with a path": 'Response({"detail": detail_at("body", gettext("Too large."))})',
    "plural": 'ngettext("%(count)d key", "%(count)d keys", count) % {"count": count}',
    "machine values": 'Response({"data": {"kind": "system"}}, headers={"Retry-After": "5"})',
    "log message": 'logger.warning("Authentication failed: %s.", reason)',
    "check id": 'Error(gettext("Broken."), id="phoenix_apikeys.E001")',
}


@pytest.mark.parametrize("case", sorted(UNMARKED))
def test_the_scanner_finds_an_unmarked_string(case: str) -> None:
    assert scan(textwrap.dedent(UNMARKED[case])), f"{case}: not found"


@pytest.mark.parametrize("case", sorted(MARKED))
def test_the_scanner_accepts_a_marked_string(case: str) -> None:
    assert scan(textwrap.dedent(MARKED[case])) == [], case


def test_the_package_check_fails_on_an_unmarked_module(tmp_path: Path) -> None:
    """What the package test would say of a module with one unmarked check message."""
    module = textwrap.dedent(
        """
        from django.core.checks import Error

        def check(**kwargs):
            return [Error("PHOENIX_SECRET is not set.", id="phoenix_apikeys.E001")]
        """
    )
    findings = scan(module)
    assert [str(finding) for finding in findings] == ["line 5: unmarked message of a check Error"]
