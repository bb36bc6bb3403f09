"""The sandbox as one ASGI application: every emulated API on one port.

Paths say which API a request is for: ``/services`` Salesforce, ``/crm``
(and HubSpot's ``/oauth``) HubSpot, ``/api`` Slack, ``/usage`` product
usage, ``/_sandbox`` the sandbox's own control surface. Requests are
counted (clghub.sandbox.counting) and, with a fault rate, some fail on
purpose (clghub.sandbox.faults).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from clghub.sandbox.apis import control, hubspot, salesforce, slack, usage
from clghub.sandbox.counting import CountingMiddleware
from clghub.sandbox.faults import FaultMiddleware
from clghub.sandbox.state import SandboxState

__all__ = ["create_app"]


def create_app(state: SandboxState) -> Starlette:
    """The sandbox application over ``state`` (which should hold generated data)."""
    table: list[BaseRoute] = [
        *control.routes(state),
        *slack.routes(state),
        *usage.routes(state),
        *salesforce.routes(state),
        *hubspot.routes(state),
    ]
    return Starlette(
        routes=table,
        middleware=[
            # Outermost first: counting sees the faults' answers too.
            Middleware(CountingMiddleware, state=state, routes=table),
            Middleware(FaultMiddleware, state=state),
        ],
    )
