"""A real file-based cache that a test can switch into failing, as an unreachable Redis does."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.cache.backends.filebased import FileBasedCache


class FlakyCache(FileBasedCache):
    broken: ClassVar[bool] = False
    calls: ClassVar[int] = 0

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        if type(self).broken:
            raise ConnectionError("cache unreachable")
        return getattr(super(), name)(*args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get", *args, **kwargs)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get_many", *args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("set", *args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("add", *args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("incr", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("delete", *args, **kwargs)
