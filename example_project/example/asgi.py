"""ASGI entry point: ``CONN_MAX_AGE=0 uvicorn example.asgi:application --no-proxy-headers``
(from example_project/; the README says why both)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
application = get_asgi_application()
