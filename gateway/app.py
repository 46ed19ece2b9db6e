"""create_app(settings) -> Starlette: routes, middleware, error handlers, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from gateway.api import clients as client_api
from gateway.api import errors, health, hooks, oauth
from gateway.api import invocations as invocation_api
from gateway.api import subscriptions as subscription_api
from gateway.api import triggers as trigger_api
from gateway.bootstrap import open_runtime
from gateway.errors import ApiError
from gateway.middleware import RequestContext
from gateway.settings import Settings

log = logging.getLogger("gateway")

API_ROUTES: list[BaseRoute] = [
    Route("/oauth/token", oauth.token, methods=["POST"]),
    Route("/api-clients", client_api.list_clients, methods=["GET"]),
    Route("/api-clients", client_api.create_client, methods=["POST"]),
    Route("/api-clients/{id}", client_api.get_client, methods=["GET"]),
    Route("/api-clients/{id}", client_api.delete_client, methods=["DELETE"]),
    Route("/api-clients/{id}/rotate-secret", client_api.rotate_client_secret, methods=["POST"]),
    Route("/triggers", trigger_api.list_triggers, methods=["GET"]),
    Route("/triggers", trigger_api.create_trigger, methods=["POST"]),
    Route("/triggers/{id}", trigger_api.get_trigger, methods=["GET"]),
    Route("/triggers/{id}", trigger_api.replace_trigger, methods=["PUT"]),
    Route("/triggers/{id}", trigger_api.delete_trigger, methods=["DELETE"]),
    Route("/trigger-subscriptions", subscription_api.list_subscriptions, methods=["GET"]),
    Route("/trigger-subscriptions", subscription_api.create_subscription, methods=["POST"]),
    Route(
        "/trigger-subscriptions/validate-filter",
        subscription_api.validate_subscription_filter,
        methods=["POST"],
    ),
    Route(
        "/trigger-subscriptions/{id}/rotate-secret",
        subscription_api.rotate_signing_secret,
        methods=["POST"],
    ),
    Route("/trigger-subscriptions/{id}/run", subscription_api.run_subscription, methods=["POST"]),
    Route("/trigger-subscriptions/{id}/webhook", subscription_api.issue_webhook, methods=["POST"]),
    Route("/trigger-subscriptions/{id}/webhook", subscription_api.revoke_webhook, methods=["DELETE"]),
    Route("/trigger-subscriptions/{id}", subscription_api.get_subscription, methods=["GET"]),
    Route("/trigger-subscriptions/{id}", subscription_api.replace_subscription, methods=["PUT"]),
    Route("/trigger-subscriptions/{id}", subscription_api.patch_subscription, methods=["PATCH"]),
    Route("/trigger-subscriptions/{id}", subscription_api.delete_subscription, methods=["DELETE"]),
    Route("/trigger-invocations/start", invocation_api.start_invocation, methods=["POST"]),
    Route("/trigger-invocations/test", invocation_api.test_invocation, methods=["POST"]),
    Route("/trigger-invocations/status", invocation_api.list_statuses, methods=["GET"]),
    Route("/trigger-invocations/{id}/status", invocation_api.get_status, methods=["GET"]),
    Route("/trigger-invocations/{id}/complete", invocation_api.complete_invocation, methods=["POST"]),
    Route("/hooks/{token}", hooks.receive_webhook, methods=["POST"]),
]

# The API is served at / and, identically, under /beta (the SailPoint SDKs' base path).
ROUTES: list[BaseRoute] = [
    Route("/health", health.health, methods=["GET"]),
    *API_ROUTES,
    Mount("/beta", routes=API_ROUTES),
]


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
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
