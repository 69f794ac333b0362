"""How the app's checks are registered: each answers only when the app is among those checked."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, register

Check = Callable[..., list[CheckMessage]]
APP = "phoenix_apikeys"


def check(*tags: str, deploy: bool = False) -> Callable[[Check], Check]:
    """``register(*tags)``, honouring ``app_configs``: ``check <other app>`` skips these."""

    def decorator(function: Check) -> Check:
        @functools.wraps(function)
        def checked(
            app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
        ) -> list[CheckMessage]:
            if app_configs is not None and all(c.name != APP for c in app_configs):
                return []
            return function(app_configs=app_configs, **kwargs)

        register(*tags, deploy=deploy)(checked)
        return checked

    return decorator
