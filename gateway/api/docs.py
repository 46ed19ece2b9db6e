"""The API documents itself, without a token: GET /openapi.yaml and /openapi.json serve the
OpenAPI document, GET /docs renders it with Swagger UI. Swagger UI's files come from the
openapi-ui-bundles package and are served here, under /docs/assets/, so the page loads
nothing from another origin, and its Content-Security-Policy allows nothing else."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import NamedTuple

import yaml
from openapi_ui_bundles import swagger_ui
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

YAML_MEDIA_TYPE = "application/yaml"  # RFC 9512
JSON_MEDIA_TYPE = "application/json"
JS_MEDIA_TYPE = "text/javascript; charset=utf-8"  # RFC 9239

# Swagger UI's files that the page uses, with their media types (named here: what mimetypes
# guesses depends on the system); the rest of the bundle's folder (its demo index.html, which
# loads a third party's document) is not served.
BUNDLE_FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": JS_MEDIA_TYPE,
    "favicon-32x32.png": "image/png",
}
INIT_SCRIPT = "init.js"

# Relative URLs, so that the page works behind a proxy that serves the gateway under a prefix:
# from /docs, docs/assets/... is /docs/assets/... and openapi.json is /openapi.json.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Trigger gateway API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/init.js"></script>
</body>
</html>
"""

# In a file of its own: the policy allows no inline script.
INIT_JS = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  queryConfigEnabled: false
});
"""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # swagger-ui.css draws its icons as data: images
        "connect-src 'self'",  # the document, and the requests of "Try it out"
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def document_file() -> Traversable:
    """The OpenAPI document: in an installed package, the copy setup.py puts beside the code;
    in a checkout (or an editable install), openapi/openapi.yaml itself."""
    shipped = resources.files("gateway") / "openapi.yaml"
    if shipped.is_file():
        return shipped
    return Path(__file__).resolve().parents[2] / "openapi" / "openapi.yaml"


class Documents(NamedTuple):
    yaml: bytes
    json: bytes


def load_documents() -> Documents:
    text = document_file().read_bytes()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where PyYAML has it
    document = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
    return Documents(text, json.dumps(document, ensure_ascii=False).encode())


_documents: Documents | None = None


async def documents() -> Documents:
    """Read and converted once, on a thread: parsing the YAML takes milliseconds that a
    request must not hold the event loop for."""
    global _documents
    if _documents is None:
        _documents = await asyncio.to_thread(load_documents)
    return _documents


async def openapi_yaml(request: Request) -> Response:
    return Response((await documents()).yaml, media_type=YAML_MEDIA_TYPE)


async def openapi_json(request: Request) -> Response:
    return Response((await documents()).json, media_type=JSON_MEDIA_TYPE)


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)


class Assets(StaticFiles):
    """/docs/assets/: the page's init.js and the Swagger UI files it loads."""

    def __init__(self) -> None:
        super().__init__(directory=swagger_ui.static_path)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
        if path == INIT_SCRIPT:
            response = Response(INIT_JS, media_type=JS_MEDIA_TYPE)
        elif path in BUNDLE_FILES:
            response = await super().get_response(path, scope)
            if response.status_code == 200:  # not a 304
                response.headers["Content-Type"] = BUNDLE_FILES[path]
        else:
            raise HTTPException(status_code=404)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
