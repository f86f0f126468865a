"""The Starlette application: pages, API, /metrics, /openapi.json and the static files, around one WebState."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perceus.web.access import check_read
from perceus.web.api import Api
from perceus.web.openapi import document
from perceus.web.pages import Pages
from perceus.web.state import WebState

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Our own script only: nothing inline, nothing from elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
}


class SecurityHeaders:
    """Pure ASGI (not BaseHTTPMiddleware, which buffers and breaks server-sent events)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build(state: WebState) -> Starlette:
    api = Api(state)
    pages = Pages(state)

    async def metrics(request: Request) -> Response:
        who = check_read(request, state.tokens)
        if isinstance(who, Response):
            return who
        await state.snapshot()
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document())  # the description is public; every path it names needs a token

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    static = StaticFiles(directory=str(files("perceus.web").joinpath("static")))
    app = Starlette(
        routes=[
            *pages.routes(),
            *api.routes(),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
            Mount("/static", static, name="static"),
        ],
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
    )

    return app
