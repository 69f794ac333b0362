"""`manage.py create_system_key --name ci`: prints the new system key alone on stdout."""

from django.utils.translation import gettext_lazy as _

from phoenix_apikeys.management.base import CreateKeyCommand
from phoenix_apikeys.models import SystemKey


class Command(CreateKeyCommand):
    help = _(  # type: ignore[assignment]
        "Create a system API key and print it alone on stdout (details go to stderr)."
    )
    model = SystemKey
