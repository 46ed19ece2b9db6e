"""A small synchronous client of the gateway's HTTP API: a token from POST /oauth/token, and
every failure as an ApiError carrying the API's own message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gateway.client.config import Credentials

if TYPE_CHECKING:  # httpx is imported when a client is made: `gateway serve --help` needs none
    import httpx

# Longer than the longest wait the API holds a request for (Prefer: wait=30, waitSeconds=30).
TIMEOUT, CONNECT_TIMEOUT = 40.0, 5.0


class ApiError(Exception):
    """The API refused a request (its message, and its HTTP status), or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def segment(value: str) -> str:
    """An id as one path segment (trigger ids hold colons, which paths allow)."""
    return quote(value, safe=":@")


class Api:
    def __init__(self, credentials: Credentials) -> None:
        import httpx

        self.credentials = credentials
        self.base = credentials.url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT))
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def authenticate(self) -> str:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
        }
        self.token = str(self._send("POST", "/oauth/token", data=data).json()["access_token"])
        return self.token

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request with a bearer token; an expired token is renewed once (`tail` outlives it)."""
        headers = dict(options.pop("headers", {}))
        fresh = self.token is None
        token = self.token or self.authenticate()
        try:
            return self._send(method, path, headers={**headers, **bearer(token)}, **options)
        except ApiError as exc:
            if fresh or exc.status != 401:
                raise
        return self._send(method, path, headers={**headers, **bearer(self.authenticate())}, **options)

    def json(self, method: str, path: str, **options: Any) -> Any:
        response = self.call(method, path, **options)
        return response.json() if response.content else None

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        import httpx

        try:
            response = self.http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the gateway at {self.base}: {exc or type(exc).__name__}") from None
        except httpx.InvalidURL as exc:
            raise ApiError(
                f"the gateway's URL {self.base!r} is not a URL ({exc}); run gateway login"
            ) from None
        if response.is_error:
            raise ApiError(message(response), response.status_code)
        return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def message(response: httpx.Response) -> str:
    """The API's error document as one line: its messages, their causes, the tracking id."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"HTTP {response.status_code} from {response.request.url}"
    texts = [m.get("text", "") for m in body.get("messages") or [] if isinstance(m, dict)]
    causes = [c.get("text", "") for c in body.get("causes") or [] if isinstance(c, dict)]
    line = "; ".join(filter(None, texts)) or str(body.get("detailCode") or f"HTTP {response.status_code}")
    if causes:
        line += f" ({'; '.join(causes)})"
    tracking = body.get("trackingId") or response.headers.get("X-Tracking-Id")
    return f"{line} [HTTP {response.status_code}, tracking id {tracking}]" if tracking else line
