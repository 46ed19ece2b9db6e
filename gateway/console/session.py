"""The console's session: a signed cookie that carries an access token (issued as
POST /oauth/token issues them, so it expires with the token) and a CSRF token."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import authorize_token
from gateway.api.requests import runtime
from gateway.domain.errors import Forbidden, Unauthorized

COOKIE = "gateway_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


# What a browser says of where a request comes from (Fetch Metadata): a form posted from
# another site is refused even where no cookie rides along (a sign-in into the attacker's
# own account). Clients that send no such header (scripts, older browsers) are not refused
# for it; they still need the session and the CSRF token.
SAME_SITE = frozenset({"same-origin", "none"})


def check_origin(request: Request) -> None:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in SAME_SITE:
        raise Forbidden("the console's forms are accepted only from its own pages")


def start(request: Request, response: Response, token: str) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, Secure behind https."""
    rt = runtime(request)
    sealed = rt.keys.seal_session({"token": token, "csrf": secrets.token_urlsafe(32)})
    response.set_cookie(
        COOKIE,
        sealed,
        max_age=rt.settings.token_ttl,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=rt.settings.public_url.startswith("https://"),
    )


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")


def _opened(request: Request) -> dict[str, str]:
    cookie = request.cookies.get(COOKIE)
    rt = runtime(request)
    session = rt.keys.open_session(cookie, rt.settings.token_ttl) if cookie else None
    if session is None or "token" not in session or "csrf" not in session:
        raise Unauthorized("sign in to the console")
    return session


async def authorize(request: Request, any_of: tuple[str, ...]) -> str:
    """The session's CSRF token, once its access token is valid and has one of the scopes."""
    session = _opened(request)
    await authorize_token(request, session["token"], any_of)
    return session["csrf"]


async def authorize_change(request: Request, any_of: tuple[str, ...]) -> dict[str, str]:
    """A state-changing request: the session as ``authorize``, and its CSRF token sent back
    in the form (or header), compared in constant time; the form's fields."""
    check_origin(request)
    csrf = await authorize(request, any_of)
    form = await read_form(request)
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf.encode()):
        raise Forbidden("the form's CSRF token does not match this session; reload the page")
    return form


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form's fields, the first value of each (what the console's forms send;
    parsed here as POST /oauth/token parses its form, without a multipart library)."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    fields = parse_qs((await request.body()).decode(errors="replace"), max_num_fields=20)
    return {key: values[0] for key, values in fields.items()}
