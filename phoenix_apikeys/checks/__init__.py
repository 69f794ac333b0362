"""System checks: every broken secret rule fails check, runserver and migrate, all in one run.

Each check answers only when ``phoenix_apikeys`` is among the apps checked (``check`` with no
app label, or with ``phoenix_apikeys``)."""

from . import deployment, settings, wiring  # noqa: F401  (registers them)
