"""The console's routes: each handler checks the session (and, for a change, its CSRF token),
calls use cases, and renders a page. Mounted at /console by api/routes.py as an app of its own,
so its routes are not operations of the API (nor in its OpenAPI document)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from gateway.api.oauth import OAuthError, authenticate
from gateway.api.requests import runtime
from gateway.console import actions, html, pages, session, views
from gateway.domain.errors import ApiError, Forbidden, Unauthorized

Handler = Callable[[Request], Awaitable[Response]]
STATIC = Path(__file__).parent / "static"


def guarded(handler: Handler) -> Handler:
    """Refusals as pages: no session sends a page's reader to sign in; others are shown."""

    async def guard(request: Request) -> Response:
        try:
            return await handler(request)
        except Unauthorized as exc:
            if request.method == "GET" and "/fragments/" not in request.url.path:
                return RedirectResponse(f"{html.BASE}/login", status_code=303)
            return _refusal(exc)
        except ApiError as exc:
            return _refusal(exc)

    return guard


def _refusal(exc: ApiError) -> Response:
    body = f'<p class="error" role="alert">{html.esc(exc.message)}</p><p><a href="{html.BASE}">Back</a></p>'
    return html.page("Not done", body, status_code=exc.status, signed_in=not isinstance(exc, Unauthorized))


async def login_page(request: Request) -> Response:
    return html.page("Sign in", pages.login(None), signed_in=False)


async def login(request: Request) -> Response:
    form = await session.read_form(request)
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    try:
        session.check_origin(request)
        if not client_id or not secret:
            raise Forbidden("give the client id and secret")
        scopes = await authenticate(request, client_id, secret)
    except (OAuthError, ApiError) as exc:
        return html.page(
            "Sign in", pages.login(exc.message, client_id), status_code=exc.status, signed_in=False
        )
    response = RedirectResponse(f"{html.BASE}/invocations", status_code=303)
    session.start(request, response, runtime(request).keys.issue_token(client_id, scopes))
    return response


async def logout(request: Request) -> Response:
    # Only from the console's own pages: a cross-site form could otherwise sign anyone out
    # (a response clears the cookie whether or not the request carried it).
    session.check_origin(request)
    response = RedirectResponse(f"{html.BASE}/login", status_code=303)
    session.end(response)
    return response


async def home(request: Request) -> Response:
    return RedirectResponse(f"{html.BASE}/invocations", status_code=303)


class Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        if path.endswith(".js"):
            response.headers["Content-Type"] = "text/javascript; charset=utf-8"
        return response


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/invocations", guarded(views.invocations), methods=["GET"]),
    Route("/fragments/invocations", guarded(views.invocations_fragment), methods=["GET"]),
    Route("/invocations/{id}", guarded(views.invocation), methods=["GET"]),
    Route("/fragments/invocations/{id}", guarded(views.invocation_fragment), methods=["GET"]),
    Route("/invocations/{id}/replay", guarded(actions.replay_invocation), methods=["POST"]),
    Route("/triggers", guarded(views.triggers_page), methods=["GET"]),
    Route("/triggers/{id}", guarded(views.trigger), methods=["GET"]),
    Route("/triggers/{id}/test", guarded(actions.test_trigger), methods=["POST"]),
    Route("/subscriptions", guarded(views.subscriptions_page), methods=["GET"]),
    Route("/subscriptions/{id}", guarded(views.subscription), methods=["GET"]),
    Route("/subscriptions/{id}/enable", guarded(actions.enable), methods=["POST"]),
    Route("/subscriptions/{id}/disable", guarded(actions.disable), methods=["POST"]),
    Route("/subscriptions/{id}/replay", guarded(actions.replay_subscription), methods=["POST"]),
    Mount("/static", app=Static(directory=STATIC)),
]


class Console:
    """The console as one ASGI app. Its router is kept private (no ``routes`` attribute), so the
    API's route table, and the test that checks it against the OpenAPI document, see a Mount
    without operations, as with /docs/assets."""

    def __init__(self) -> None:
        self._router = Router(routes=ROUTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._router(scope, receive, send)
