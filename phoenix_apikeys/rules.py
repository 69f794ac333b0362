"""The rules PHOENIX_SECRET and PHOENIX_ADMIN_SECRET must follow, in one place.

The system checks report these problems at start-up; the runtime guard refuses an admin secret
(or every key, for a broken PHOENIX_SECRET) that has any, since checks never run under WSGI/ASGI.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_LENGTH = 32


@dataclass(frozen=True)
class Problem:
    id: str
    variable: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.variable} {self.message}."


def _strength_problems(variable: str, value: str, first_id: int) -> list[Problem]:
    hint_new = (
        'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))" '
        "(re-run until it has a digit)."
    )
    problems = []
    if len(value) < MIN_LENGTH:
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id:03d}",
                variable,
                f"is {len(value)} characters long; it must be at least {MIN_LENGTH}",
                hint_new,
            )
        )
    if not any(char.isdigit() for char in value):
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id + 1:03d}",
                variable,
                "must contain at least one digit",
                hint_new,
            )
        )
    if not any(char.islower() for char in value):
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id + 2:03d}",
                variable,
                "must contain at least one lowercase letter",
                hint_new,
            )
        )
    return problems


def secret_problems(secret: str | None) -> list[Problem]:
    """Every rule PHOENIX_SECRET breaks; an empty list means it may be used."""
    if not secret:
        return [
            Problem(
                "phoenix_apikeys.E001",
                "PHOENIX_SECRET",
                "is not set; API keys cannot be verified without it",
                "Set PHOENIX_SECRET in your settings or environment (32+ characters, "
                "with a digit and a lowercase letter).",
            )
        ]
    problems = _strength_problems("PHOENIX_SECRET", secret, first_id=2)
    if not secret.isascii() or any(char.isspace() for char in secret):
        problems.append(
            Problem(
                "phoenix_apikeys.E005",
                "PHOENIX_SECRET",
                "must be printable ASCII with no whitespace",
                "Whitespace and non-ASCII characters are lost or changed by shells and "
                "env files; use letters, digits and punctuation only.",
            )
        )
    return problems


def admin_secret_problems(admin_secret: str | None, secret: str | None) -> list[Problem]:
    """Every rule PHOENIX_ADMIN_SECRET breaks; an unset admin secret breaks none."""
    if not admin_secret:
        return []
    problems = []
    if not secret:
        problems.append(
            Problem(
                "phoenix_apikeys.E011",
                "PHOENIX_ADMIN_SECRET",
                "cannot be set while PHOENIX_SECRET is not configured",
                "Set PHOENIX_SECRET first, or remove PHOENIX_ADMIN_SECRET.",
            )
        )
    problems += _strength_problems("PHOENIX_ADMIN_SECRET", admin_secret, first_id=12)
    if secret and admin_secret == secret:
        problems.append(
            Problem(
                "phoenix_apikeys.E015",
                "PHOENIX_ADMIN_SECRET",
                "must differ from PHOENIX_SECRET",
                "Use two independent random values.",
            )
        )
    return problems
