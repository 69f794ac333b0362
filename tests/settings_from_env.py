"""Test settings that leave the secrets to the environment, as a deployment would."""

from .settings import *  # noqa: F403

del PHOENIX_SECRET, PHOENIX_ADMIN_SECRET, PHOENIX_SECRET_FALLBACKS  # noqa: F821
