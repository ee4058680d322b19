"""A real http.server on 127.0.0.1 serving a symstore tree (paths → bytes or a behaviour), for the tests."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator


class ServedTree:
    """What the server answers: path → bytes, or a behaviour ("slow", "truncated", "error")."""

    def __init__(self) -> None:
        self.files: dict[str, bytes | str] = {}
        self.log: list[str] = []
        self.lock = threading.Lock()


def _handler(tree: ServedTree) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rel = self.path.lstrip("/")
            with tree.lock:
                tree.log.append(rel)
            body = tree.files.get(rel)
            if body is None:
                self.send_error(404)
                return
            if body == "slow":
                time.sleep(1.5)
                body = b"late"
            if body == "error":
                self.send_error(503)
                return
            if body == "truncated":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"x" * 10)
                return
            assert isinstance(body, bytes)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return H


@contextlib.contextmanager
def serve() -> Iterator[tuple[str, ServedTree]]:
    tree = ServedTree()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(tree))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/symbols", tree
    finally:
        srv.shutdown()
        srv.server_close()


