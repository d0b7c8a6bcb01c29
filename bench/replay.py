"""AWS as a no-op plan sees it, without the sandbox's own cost: an HTTP endpoint that forwards
each distinct request to the sandbox once, then answers it again from memory after exactly the
latency, on as many threads as ask at once.

The sandbox answers one request at a time (moto is not thread-safe), a few milliseconds of Python
each: 32 reads asked at once queue there for 0.2-0.3 s, which AWS, answering them in parallel,
does not. Replayed, a run's wall time is the client's own plus the round trips it waits for.
Only reads can be replayed (the answers never change): bench/figures.py replays the no-op plan.

    with Replay(sandbox_url, latency_ms=50) as aws: ... aws.endpoint_url ...
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Key = tuple[str, str, str, bytes]
Answer = tuple[int, list[tuple[str, str]], bytes]
# Not replayed as recorded: the replay sets its own length and closes nothing.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class Server(ThreadingHTTPServer):
    # A plan opens some 30 connections at once: past socketserver's backlog of 5, a connection
    # refused is tried again by the client's TCP after a second, which AWS does not make it do.
    request_queue_size = 128


class Replay:
    def __init__(self, upstream: str, latency_ms: float) -> None:
        self.upstream = urlsplit(upstream)
        self.latency = latency_ms / 1000
        self.answers: dict[Key, Answer] = {}
        self.forwarded = 0
        self._lock = threading.Lock()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two sends: with Nagle's algorithm the body would wait
            # for the client's delayed acknowledgement of the headers (up to 40 ms on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *_: Any) -> None:
                pass

            def parse_request(self) -> bool:
                # The request line has just arrived: the latency counts from here, not from after
                # this server's own parsing and lookup (a few ms when the client keeps both cores
                # busy), which AWS's latency would not include twice.
                self.arrived = time.monotonic()
                return bool(super().parse_request())

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, data = replay.answer(self.command, self.path, dict(self.headers.items()), body)
                time.sleep(max(0.0, replay.latency - (time.monotonic() - self.arrived)))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        key = (method, path, headers.get("X-Amz-Target", ""), body)
        with self._lock:
            known = self.answers.get(key)
        if known is not None:
            return known
        conn = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port)
        try:
            conn.request(method, path, body=body, headers=headers)
            got = conn.getresponse()
            answer = (got.status, [(k, v) for k, v in got.getheaders() if k.lower() not in HOP_BY_HOP], got.read())
        finally:
            conn.close()
        with self._lock:
            self.answers[key] = answer
            self.forwarded += 1
        return answer

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
