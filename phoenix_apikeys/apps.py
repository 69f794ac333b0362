from django.apps import AppConfig, apps


class PhoenixAPIKeysConfig(AppConfig):
    name = "phoenix_apikeys"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, install_checks, receivers  # noqa: F401  (registers them)

        # Attaches to the host's user admin whatever the order of INSTALLED_APPS; the
        # phoenix_apikeys.W010 check says when it could not.
        if apps.is_installed("django.contrib.admin"):
            from .admin.users import attach_to_default_site

            attach_to_default_site()

        try:
            from . import openapi  # noqa: F401  (registers the drf-spectacular extension)
        except ImportError:  # drf-spectacular is optional: the [openapi] extra
            pass
        try:
            from . import metrics
        except ImportError:  # prometheus_client is optional: the [prometheus] extra
            pass
        else:
            metrics.register()
