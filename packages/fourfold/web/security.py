"""The app's guards as ASGI middleware, outermost first (``protect``):

- ``SecurityHeaders``: every response says ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: same-origin`` and a Content-Security-Policy that allows the app's own scripts, styles,
  images and media only (plus ``data:`` images: the scoring page's figure is inline);
- ``TrustedHostMiddleware`` (Starlette): the Host header must be 127.0.0.1 or localhost (DNS rebinding);
- ``OriginCheck``: a POST from another origin (a page of another site, or of another port) is refused;
- ``ErrorPages``: an exception no page handled becomes a one-line 500 page (``on_unexpected``), logged;
- ``BodyCap``: a request body larger than its path's cap is refused on the stream, counted as it arrives,
  chunked bodies (no Content-Length) included, so no more than the cap ever reaches the form parser.

Each refusal is an HTML page from ``refuse(scope, status, sentence)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.middleware.trustedhost import TrustedHostMiddleware

TRUSTED_HOSTS = ("127.0.0.1", "localhost")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make browsers send Origin: null
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Past a cap, read (and drop) at most this much more, so that a client still sending can read the page.
DRAIN_BYTES = 256 * 1024 * 1024

Refuse = Callable[[dict, int, str], Callable]  # (scope, status, sentence) -> an ASGI response
log = logging.getLogger("fourfold.web")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class OriginCheck:
    """Refuse a state-changing request whose ``Origin`` is not this server's own (``http://`` + its Host),
    or, when a browser sends no Origin, whose ``Sec-Fetch-Site`` says it came from another site."""

    def __init__(self, app, refuse: Refuse):
        self.app, self.refuse = app, refuse

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and not self.same_origin(scope):
            response = self.refuse(
                scope,
                403,
                "the form was sent from another page than this app's; open the app and submit it there",
            )
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)

    @staticmethod
    def same_origin(scope) -> bool:
        origin, host = _header(scope, b"origin"), _header(scope, b"host")
        if origin is None:
            return _header(scope, b"sec-fetch-site") in (None, "same-origin", "none")
        parts = urlsplit(origin)
        return host is not None and parts.scheme == "http" and parts.netloc.lower() == host.lower()


class TrackedSend:
    """An ASGI ``send`` that remembers whether the response has started (then no error page can follow)."""

    def __init__(self, send):
        self.send, self.started = send, False

    async def __call__(self, message):
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body passes its cap; ``BodyCap`` turns it into a 413 page."""


class BodyCap:
    """Refuse any request body over ``cap(path) -> (bytes, sentence)``: at once when Content-Length says so,
    otherwise as soon as the bytes counted on the stream pass the cap (before the app sees them)."""

    def __init__(self, app, cap: Callable[[str], tuple[int, str]], refuse: Refuse):
        self.app, self.cap, self.refuse = app, cap, refuse

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, sentence = self.cap(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
            await _drain(receive)
            return await self.refuse(scope, 413, sentence)(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body"):
                        await _drain(receive)
                    raise BodyTooLarge
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, counted_receive, tracked)
        except BodyTooLarge:
            if tracked.started:
                raise
            await self.refuse(scope, 413, sentence)(scope, receive, send)


async def _drain(receive) -> None:
    """Read and drop the rest of a refused body (up to ``DRAIN_BYTES``): a client still sending when the
    connection closes gets a reset instead of the page; nothing is stored."""
    dropped = 0
    while dropped < DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body"):
            return


class ErrorPages:
    """Turn an exception that reached the top into ``on_unexpected(scope, error)`` (a 500 page), logged
    with its traceback for the server's console, if no response has started."""

    def __init__(self, app, on_unexpected: Callable[[dict, Exception], Callable]):
        self.app, self.on_unexpected = app, on_unexpected

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            log.exception("unexpected error on %s", scope.get("path"))
            if tracked.started:
                raise
            await self.on_unexpected(scope, err)(scope, receive, send)


def protect(
    app,
    cap: Callable[[str], tuple[int, str]],
    refuse: Refuse,
    on_unexpected: Callable[[dict, Exception], Callable],
    hosts=TRUSTED_HOSTS,
) -> None:
    """Install the guards on a Starlette/FastAPI ``app`` (the last added runs first)."""
    app.add_middleware(BodyCap, cap=cap, refuse=refuse)
    app.add_middleware(OriginCheck, refuse=refuse)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    app.add_middleware(ErrorPages, on_unexpected=on_unexpected)
    app.add_middleware(SecurityHeaders)
