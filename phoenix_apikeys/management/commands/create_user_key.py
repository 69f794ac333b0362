"""`manage.py create_user_key --user alice --name notebook`: prints the key alone on stdout."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from phoenix_apikeys.management.base import CreateKeyCommand
from phoenix_apikeys.models import UserKey


class Command(CreateKeyCommand):
    help = "Create a user API key for --user and print it alone on stdout (details on stderr)."
    model = UserKey

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="the owner's username")
        super().add_arguments(parser)

    def key_fields(self, options: dict[str, Any]) -> dict[str, Any]:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(options["user"])
        except user_model.DoesNotExist:
            raise CommandError(f"--user: no user {options['user']!r}.") from None
        return {"user": user}  # the model refuses the system user and inactive users
