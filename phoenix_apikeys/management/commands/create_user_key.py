"""`manage.py create_user_key --user alice --name notebook`: prints the key alone on stdout."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.management.base import CreateKeyCommand, user_named
from phoenix_apikeys.models import UserKey


class Command(CreateKeyCommand):
    help = _(  # type: ignore[assignment]
        "Create a user API key for --user and print it alone on stdout (details on stderr)."
    )
    model = UserKey

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help=gettext("the owner's username"))
        super().add_arguments(parser)

    def key_fields(self, options: dict[str, Any]) -> dict[str, Any]:
        # The model refuses the system user and inactive users.
        return {"user": user_named(options["user"])}
