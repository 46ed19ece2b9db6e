"""The one route table: every endpoint of the API, each also at its SailPoint service-versioned
path (SailPoint's 2.x SDK calls ``/triggers/v1``, ``/trigger-subscriptions/v1/{id}``...), all
served at / and, identically, under /beta (the 1.x SDK's base path)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route

from gateway.api import (
    api_clients,
    docs,
    health,
    hooks,
    invocations,
    metrics,
    oauth,
    subscriptions,
    triggers,
)
from gateway.console.routes import Console
from gateway.domain.documents import API_VERSION

BETA_ROUTES: list[BaseRoute] = [
    # The hot routes first: Starlette tries the routes in order, a regex each.
    Route("/trigger-invocations/start", invocations.start_invocation, methods=["POST"]),
    Route("/trigger-invocations/test", invocations.test_invocation, methods=["POST"]),
    Route("/trigger-invocations/status", invocations.list_statuses, methods=["GET"]),
    Route("/trigger-invocations/{id}/status", invocations.get_status, methods=["GET"]),
    Route("/trigger-invocations/{id}/complete", invocations.complete_invocation, methods=["POST"]),
    Route("/trigger-invocations/{id}/heartbeat", invocations.heartbeat, methods=["POST"]),
    Route("/trigger-invocations/{id}/attempts", invocations.list_attempts, methods=["GET"]),
    Route("/trigger-invocations/{id}/replay", invocations.replay_invocation, methods=["POST"]),
    Route("/oauth/token", oauth.token, methods=["POST"]),
    Route("/api-clients", api_clients.list_api_clients, methods=["GET"]),
    Route("/api-clients", api_clients.create_api_client, methods=["POST"]),
    Route("/api-clients/{id}", api_clients.get_api_client, methods=["GET"]),
    Route("/api-clients/{id}", api_clients.delete_api_client, methods=["DELETE"]),
    Route("/api-clients/{id}/rotate-secret", api_clients.rotate_api_client_secret, methods=["POST"]),
    Route("/triggers", triggers.list_triggers, methods=["GET"]),
    Route("/triggers", triggers.create_trigger, methods=["POST"]),
    Route("/triggers/{id}", triggers.get_trigger, methods=["GET"]),
    Route("/triggers/{id}", triggers.replace_trigger, methods=["PUT"]),
    Route("/triggers/{id}", triggers.delete_trigger, methods=["DELETE"]),
    Route("/trigger-subscriptions", subscriptions.list_subscriptions, methods=["GET"]),
    Route("/trigger-subscriptions", subscriptions.create_subscription, methods=["POST"]),
    Route(
        "/trigger-subscriptions/validate-filter",
        subscriptions.validate_subscription_filter,
        methods=["POST"],
    ),
    Route(
        "/trigger-subscriptions/{id}/rotate-secret",
        subscriptions.rotate_signing_secret,
        methods=["POST"],
    ),
    Route("/trigger-subscriptions/{id}/run", subscriptions.run_subscription, methods=["POST"]),
    Route("/trigger-subscriptions/{id}/replay", subscriptions.replay_subscription, methods=["POST"]),
    Route("/trigger-subscriptions/{id}/webhook", subscriptions.issue_webhook, methods=["POST"]),
    Route("/trigger-subscriptions/{id}/webhook", subscriptions.revoke_webhook, methods=["DELETE"]),
    Route("/trigger-subscriptions/{id}", subscriptions.get_subscription, methods=["GET"]),
    Route("/trigger-subscriptions/{id}", subscriptions.replace_subscription, methods=["PUT"]),
    Route("/trigger-subscriptions/{id}", subscriptions.patch_subscription, methods=["PATCH"]),
    Route("/trigger-subscriptions/{id}", subscriptions.delete_subscription, methods=["DELETE"]),
    Route("/hooks/{token}", hooks.receive_webhook, methods=["POST"]),
]

# The collections SailPoint serves per service version, as /<collection>/v1/...
VERSIONED_COLLECTIONS = ("triggers", "trigger-subscriptions", "trigger-invocations")


def at_version(route: BaseRoute) -> BaseRoute | None:
    """``route`` at its SailPoint v1 path (``/triggers/{id}`` → ``/triggers/v1/{id}``), or None
    for a route outside the versioned collections."""
    assert isinstance(route, Route)
    _, collection, *rest = route.path.split("/")
    if collection not in VERSIONED_COLLECTIONS:
        return None
    path = "/".join(["", collection, API_VERSION, *rest])
    return Route(path, route.endpoint, methods=route.methods, name=route.name)


def _collection(route: BaseRoute) -> str:
    assert isinstance(route, Route)
    return route.path.split("/")[1]


def _with_versions(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Each collection's v1 routes, then its own, collection by collection in the order of
    ``routes``. The v1 routes go first so that /triggers/v1 is the v1 list and not the trigger
    "v1" (a name refused); paths of different collections never overlap."""
    collections = list(dict.fromkeys(map(_collection, routes)))
    ordered: list[BaseRoute] = []
    for collection in collections:
        own = [route for route in routes if _collection(route) == collection]
        ordered += [v1 for v1 in map(at_version, own) if v1 is not None] + own
    return ordered


API_ROUTES = _with_versions(BETA_ROUTES)

ROUTES: list[BaseRoute] = [
    Mount("/beta", routes=API_ROUTES),
    Route("/health", health.ready, methods=["GET"]),
    Route("/health/ready", health.ready, methods=["GET"]),
    Route("/health/live", health.live, methods=["GET"]),
    Route("/metrics", metrics.scrape, methods=["GET"]),
    Route("/openapi.yaml", docs.openapi_yaml, methods=["GET"]),
    Route("/openapi.json", docs.openapi_json, methods=["GET"]),
    Route("/docs", docs.page, methods=["GET"]),
    Mount("/docs/assets", app=docs.Assets()),  # static files: no operations of the API
    Mount("/console", app=Console()),  # the admin console's pages: no operations of the API
    *API_ROUTES,
]
