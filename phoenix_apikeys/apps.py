from django.apps import AppConfig, apps


class PhoenixAPIKeysConfig(AppConfig):
    name = "phoenix_apikeys"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401  (registers checks and receivers)

        # Runs after the admin's autodiscover, so the host's user admin is registered by now.
        if apps.is_installed("django.contrib.admin"):
            from .admin import attach_to_user_admin

            attach_to_user_admin()

        try:
            from . import openapi  # noqa: F401  (registers the drf-spectacular extension)
        except ImportError:  # drf-spectacular is optional: the [openapi] extra
            pass
