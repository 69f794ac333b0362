from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PhoenixAPIKeysConfig(AppConfig):
    name = "phoenix_apikeys"
    verbose_name = _("API keys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401  (registers them)

        try:
            from .rest import openapi  # noqa: F401  (registers the drf-spectacular extension)
        except ImportError:  # drf-spectacular is optional: the [openapi] extra
            pass
        try:
            from . import metrics
        except ImportError:  # prometheus_client is optional: the [prometheus] extra
            pass
        else:
            metrics.register()
