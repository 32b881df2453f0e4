"""The same fake Authgear served over real HTTP on loopback, for tests with several processes.

``responses`` only patches the process it runs in; worker processes reach this server instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.fake_authgear import FakeAuthgear


@dataclass
class _Request:
    body: str
    headers: dict[str, str] = field(default_factory=dict)


def _handler_for(fake: FakeAuthgear) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            route = fake.routes.get((method, urlsplit(self.path).path))
            if route is None:
                status, headers, text = 404, {}, "not found"
            else:
                request = _Request(body=body, headers=dict(self.headers.items()))
                with lock:  # the fake's bookkeeping is not thread-safe; Authgear's latency is
                    result: Any = route(request)
                if isinstance(result, BaseException):
                    raise result
                status, headers, text = result
            payload = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve_fake_authgear() -> Iterator[FakeAuthgear]:
    """Start a FakeAuthgear on a free loopback port; its ``endpoint`` is the server's origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    fake = FakeAuthgear(None, endpoint=f"http://127.0.0.1:{port}")
    server.RequestHandlerClass = _handler_for(fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
