"""The HTTP side of `--serve`: routes, security headers, the Host and token checks, timeouts, a client cap.

Standard library only. HTTP/1.0, one request per connection, so an idle browser holds no thread.
Every socket has a timeout: a request must arrive within REQUEST_DEADLINE_S (a client that sends its
headers a byte at a time is cut off), each read within IDLE_TIMEOUT_S, and a stream client that
takes no data for WRITE_TIMEOUT_S is dropped. Beyond MAX_CLIENTS connections at once the answer is
503 without a thread. A client that goes away mid-answer is a debug line, never a traceback.
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from camera_app import serve_access

log = logging.getLogger("edgevision.camera")
IDLE_TIMEOUT_S = 10.0
REQUEST_DEADLINE_S = 20.0
WRITE_TIMEOUT_S = 10.0
MAX_CLIENTS = 16
QUIET_ERRORS = (ConnectionError, TimeoutError)  # resets, broken pipes, timeouts: the client's doing
SECURITY_HEADERS = {
    # The page's script is /app.js and its style /style.css: no inline code runs, whatever a label says.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
CONTROL_CHARACTERS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"]*")


def _web_file(name: str) -> bytes:
    return resources.files("camera_app").joinpath("web", name).read_bytes()


FILES = {
    "/": (_web_file("index.html"), "text/html; charset=utf-8"),
    "/app.js": (_web_file("app.js"), "text/javascript; charset=utf-8"),
    "/style.css": (_web_file("style.css"), "text/css; charset=utf-8"),
}
FILES["/index.html"] = FILES["/"]
ROUTES = "/, /stream.mjpg, /snapshot.jpg, /stats.json"


class Server(ThreadingHTTPServer):
    """A threading HTTP server on IPv4 or IPv6 that caps its clients and keeps client errors quiet.

    `frames` is the FrameServer (newest JPEG, stats); `names` the Host names it answers to.
    """

    daemon_threads = True

    def __init__(self, host: str, port: int, frames, token: str | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.frames, self.token = frames, token
        self.clients = 0
        self.clients_lock = threading.Lock()
        super().__init__((host, port), Handler)
        self.names = serve_access.host_names(host, self.server_address[0])

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # `::` takes IPv4 too
        super().server_bind()

    def process_request(self, request, client_address) -> None:
        with self.clients_lock:
            full = self.clients >= MAX_CLIENTS
            self.clients += not full
        if full:
            log.debug("serve: %s refused, %d clients already", client_address[0], MAX_CLIENTS)
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n"
                                b"\r\n503 too many clients at once: try again later\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._client_left()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._client_left()

    def _client_left(self) -> None:
        with self.clients_lock:
            self.clients -= 1

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(error, QUIET_ERRORS) else logging.WARNING
        log.log(level, "serve: %s: %s: %s", client_address[0], type(error).__name__, error)


class Handler(BaseHTTPRequestHandler):
    server: Server
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def version_string(self) -> str:
        return "edgevision"

    def setup(self) -> None:
        self.timeout = IDLE_TIMEOUT_S
        super().setup()
        self.deadline = threading.Timer(REQUEST_DEADLINE_S, self._cut_off)
        self.deadline.daemon = True
        self.deadline.start()

    def _cut_off(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)  # the blocked read returns: the request is over
        except OSError:
            pass

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.deadline.cancel()
        return parsed

    def finish(self) -> None:
        self.deadline.cancel()
        super().finish()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        message = TOKEN_IN_URL.sub(r"\1…", format % args)  # a token never reaches the log
        log.debug("serve: %s %s", self.client_address[0], message.translate(CONTROL_CHARACTERS))

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def __getattr__(self, name: str):
        """Any method but GET and HEAD: 405 (the base class answers 501 to an unknown one)."""
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._answer(405, f"405 {self.command} is not served here: GET or HEAD\n".encode(), "text/plain",
                     {"Allow": "GET, HEAD"})

    def _answer(self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, code: int, line: str, headers: dict[str, str] | None = None) -> None:
        self._answer(code, f"{code} {line}\n".encode(), "text/plain; charset=utf-8", headers)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        server = self.server
        hosts = self.headers.get_all("Host") or []
        host = hosts[0] if len(hosts) == 1 else None  # two Host headers: which one a proxy read is unknown
        local = self.connection.getsockname()[0]
        # An absolute-form target (`GET http://name/ HTTP/1.1`) names the host that counts (RFC 9112 3.2.2).
        allowed = serve_access.host_allowed(host, server.names, server.server_address[1], local) and (
            not (url.scheme or url.netloc) or serve_access.host_allowed(url.netloc, server.names,
                                                                        server.server_address[1], local))
        if not allowed:
            shown = (f"{len(hosts)} Host headers" if len(hosts) > 1 else repr(url.netloc[:100]) if url.netloc
                     else repr(host[:100]) if host else "(none)")
            self._text(421, f"Host {shown} does not name this server (DNS rebinding guard): use "
                            f"{server.frames.url} or give the name as --serve HOST:PORT")
            return
        cookie = {}
        if server.token is not None:
            query = parse_qs(url.query)
            if not serve_access.token_matches(
                serve_access.presented_tokens(self.headers, query, server.server_address[1]), server.token
            ):
                self._text(401, "this camera view needs its token: open /?token=TOKEN or send "
                                "'Authorization: Bearer TOKEN'", {"WWW-Authenticate": 'Bearer realm="edgevision"'})
                return
            if query.get("token"):
                # The page's own requests then carry the cookie; the script drops ?token= from the address bar.
                name = serve_access.cookie_name(server.server_address[1])
                cookie = {"Set-Cookie": f"{name}={server.token}; Path=/; HttpOnly; SameSite=Strict"}
        if url.path in FILES:
            self._answer(200, *FILES[url.path], cookie)
        elif url.path == "/stats.json":
            self._answer(200, server.frames.stats_json(), "application/json", cookie)
        elif url.path == "/snapshot.jpg":
            self._snapshot()
        elif url.path == "/stream.mjpg":
            self._stream()
        else:
            self._text(404, f"not found: try {ROUTES}")

    def _snapshot(self) -> None:
        jpeg = self.server.frames.snapshot()
        if jpeg is None:
            self._text(503, "no frame yet: the source has not produced one")
        else:
            self._answer(200, jpeg, "image/jpeg")

    def _stream(self) -> None:
        frames = self.server.frames
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={frames.boundary}")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.connection.settimeout(WRITE_TIMEOUT_S)
        with frames.watching():
            sequence = frames.sequence  # the next new frame, never one sent before
            while True:
                jpeg, sequence = frames.next_jpeg(sequence)
                if jpeg is None:
                    return
                self.wfile.write(frames.part(jpeg))
