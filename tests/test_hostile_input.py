from __future__ import annotations

import io
import time
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from .factories import SystemKeyFactory, UserKeyFactory

pytestmark = pytest.mark.django_db


def call(handler, path, auth):
    out = {}
    def start(status, headers, exc_info=None):
        out["status"] = status
        out["headers"] = headers
    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(), "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    if auth is not None:
        environ["HTTP_AUTHORIZATION"] = auth
    response = handler(environ, start)
    body = b"".join(response)
    response.close()
    return out["status"], body


def test_speed(admin_secret):
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    key = UserKeyFactory()
    h = WSGIHandler()
    for path in ["/whoami/", "/plain/", "/v1/user"]:
        for auth in [f"Bearer {key.plaintext}", "Bearer junk", "Bearer \x00x", None, f"Bearer {admin_secret}"]:
            t = time.perf_counter()
            for _ in range(300):
                s, b = call(h, path, auth)
            print(path, repr(auth)[:20], s, b[:60], (time.perf_counter() - t) / 300 * 1000, "ms")
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
