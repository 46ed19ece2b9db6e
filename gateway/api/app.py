"""create_app(settings) -> Starlette: the route table, middleware, error handlers, and the
runtime opened for the app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from gateway.api import errors
from gateway.api.middleware import RequestContext
from gateway.api.routes import ROUTES
from gateway.bootstrap import open_runtime
from gateway.domain.errors import ApiError
from gateway.runtime import Runtime
from gateway.settings import Settings


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    """The app; it opens its runtime for its lifetime unless given one (`gateway serve` opens
    it before it listens, so that a failure to open it is a start-up error, in one line)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        async with open_runtime(settings, "api") as rt:
            app.state.runtime = rt
            yield

    return Starlette(
        routes=ROUTES,
        middleware=[Middleware(RequestContext, max_body_bytes=settings.max_body_bytes)],
        exception_handlers={
            ApiError: errors.handle_api_error,
            ValidationError: errors.handle_validation_error,
            HTTPException: errors.handle_http_exception,
            Exception: errors.handle_unexpected,
        },
        lifespan=lifespan,
    )
