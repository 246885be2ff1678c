"""A real HTTP receiver for webhook tests: a threaded http.server on 127.0.0.1 and a free
port, answering from a script (status, headers, delay, or held until the test releases it) and
recording every request."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def message(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Answer only once the test sets this (or after HOLD_LIMIT seconds, so that a failing
    # test cannot hang the run): the request stays in flight for as long as the test needs.
    hold: threading.Event | None = None


HOLD_LIMIT = 60.0


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self.default = Answer()
        # Answers by the URL's last path segment (an endpoint), ahead of the script.
        self.routes: dict[str, Answer] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    answer = receiver.routes.get(self.path.rsplit("/", 1)[-1]) or (
                        receiver.script.pop(0) if receiver.script else receiver.default
                    )
                if answer.hold is not None:
                    answer.hold.wait(HOLD_LIMIT)
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        # The prefix the tests' apps allow webhooks to (webhook_allowed_urls).
        self.allowed = f"{self.base}/hooks/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def new_url(self) -> str:
        """A URL no endpoint has yet, under the allowed prefix."""
        return f"{self.allowed}{uuid.uuid4().hex}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [item.message for item in self.received]

    def route(self, url: str, answer: Answer) -> None:
        """Answer every request to ``url`` (an endpoint's) with ``answer`` from now on."""
        with self._lock:
            self.routes[url.rsplit("/", 1)[-1]] = answer

    def to(self, url: str) -> list[Received]:
        """The requests made to ``url``."""
        with self._lock:
            return [item for item in self.received if url.endswith(item.path)]

    def of_resource(self, resource_id: object) -> list[Received]:
        with self._lock:
            return [
                item
                for item in self.received
                if item.message.get("data", {}).get("resource_id") == str(resource_id)
            ]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
