"""The sandbox in-process: a synchronous httpx transport that calls the ASGI app.

For tests that want the sandbox without sockets::

    state = SandboxState(SandboxOptions(accounts=20, as_of=date(2025, 6, 30)))
    generate(state)
    with httpx.Client(transport=InProcessTransport(create_app(state)), base_url="http://sandbox") as client:
        client.get("/_sandbox/health")

Each request runs to completion on the transport's own event loop, in the
calling thread. Clients that need a real socket (simple-salesforce over
https, slack-sdk, a cut connection) use clghub.sandbox.server instead.
"""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import ASGIApp

__all__ = ["InProcessTransport"]


class InProcessTransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self._transport = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            # The request body arrives as a sync stream; ASGI reads it async.
            body = request.read()
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._transport.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        return self._loop.run_until_complete(call())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._transport.aclose())
            self._loop.close()
