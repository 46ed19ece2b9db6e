"""The API documents itself, to anyone without a token: GET /openapi.yaml and /openapi.json serve
openapi/openapi.yaml, and GET /docs renders it with Swagger UI from files the gateway serves
itself, under a Content-Security-Policy that allows nothing from another origin. A package
built from the repository (a wheel, the Docker image) carries the document."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import pytest_asyncio
import yaml

from tests.conftest import start_gateway

# The async tests share one gateway; the last two build the package instead.
shared_gateway = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi" / "openapi.yaml"
# The media type each asset must be served as, by its extension.
ASSET_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def anonymous(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an embedded gateway that sends no token."""
    async with (
        start_gateway(tmp_path_factory.mktemp("docs")) as gateway,
        httpx.AsyncClient(base_url=gateway.settings.public_url, timeout=30) as client,
    ):
        yield client


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


class Page(HTMLParser):
    """What a browser would load for a page: the URLs of its scripts, styles and images, and
    anything inline (which the page's policy would block)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script":
            self._in_script = True
            if "src" not in values:
                self.inline.append("a <script> without src")
        if tag == "style" or "style" in values or any(name.startswith("on") for name in values):
            self.inline.append(f"<{tag}> with inline style or handler")
        for name in ("src", "href"):
            if name in values and tag in ("script", "link", "img"):
                self.urls.append(values[name])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"script text {data.strip()[:40]!r}")


def policy(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for directive in filter(None, (part.strip() for part in header.split(";"))):
        name, *sources = directive.split()
        directives[name.lower()] = sources
    return directives


@shared_gateway
async def test_the_document_is_served_in_yaml_and_json_without_a_token(anonymous: httpx.AsyncClient) -> None:
    as_yaml = await anonymous.get("/openapi.yaml")
    assert as_yaml.status_code == 200, as_yaml.text
    assert media_type(as_yaml) == "application/yaml"
    assert as_yaml.content == DOCUMENT.read_bytes()  # the repository's document, as written

    as_json = await anonymous.get("/openapi.json")
    assert as_json.status_code == 200, as_json.text
    assert media_type(as_json) == "application/json"
    document = yaml.safe_load(as_yaml.content)
    assert json.loads(as_json.content) == document
    assert str(document["openapi"]).startswith("3.1.")
    for path in ("/openapi.yaml", "/openapi.json", "/docs"):
        assert document["paths"][path]["get"]["security"] == []


@shared_gateway
async def test_the_page_loads_only_the_gateways_own_files(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/docs")
    assert response.status_code == 200, response.text
    assert media_type(response) == "text/html"
    page = Page()
    page.feed(response.text)
    assert not page.inline, page.inline
    assert {Path(urlsplit(url).path).suffix for url in page.urls} == set(ASSET_TYPES), page.urls

    origin = urlsplit(str(response.url))
    for url in page.urls:
        resolved = urlsplit(urljoin(str(response.url), url))
        assert (resolved.scheme, resolved.netloc) == (origin.scheme, origin.netloc), url
        assert resolved.path.startswith("/docs/assets/"), url
        asset = await anonymous.get(resolved.path)
        assert asset.status_code == 200, f"{url}: {asset.status_code}"
        assert media_type(asset) == ASSET_TYPES[Path(resolved.path).suffix], f"{url}: {media_type(asset)}"
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert asset.content


@shared_gateway
async def test_the_page_has_a_policy_that_allows_only_its_own_origin(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/docs")
    directives = policy(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for name, sources in directives.items():
        # data: only for the icons swagger-ui.css draws; no host, scheme or 'unsafe-...'.
        allowed = {"'self'", "'none'"} | ({"data:"} if name == "img-src" else set())
        assert set(sources) <= allowed, f"{name}: {sources}"
    assert response.headers["x-content-type-options"] == "nosniff"


@shared_gateway
async def test_the_page_renders_the_served_document(anonymous: httpx.AsyncClient) -> None:
    script = await anonymous.get("/docs/assets/init.js")
    assert script.status_code == 200
    assert not re.search(r"https?:|//", script.text), "the script names no other origin"
    (url,) = re.findall(r'\burl: "([^"]+)"', script.text)
    resolved = urlsplit(urljoin(urljoin(str(anonymous.base_url), "docs"), url))
    assert resolved.path == "/openapi.json", url
    document = await anonymous.get(resolved.path)
    assert document.status_code == 200
    assert media_type(document) == "application/json"


@shared_gateway
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        # The bundle's own demo page (which loads a third party's document) is not served.
        ("GET", "/docs/assets/index.html", 404),
        ("GET", "/docs/assets/swagger-ui.js.map", 404),
        ("POST", "/docs/assets/init.js", 405),
        ("POST", "/docs", 405),
        ("GET", "/beta/openapi.yaml", 404),
    ],
)
async def test_only_what_the_page_needs_is_served(
    anonymous: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await anonymous.request(method, path)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detailCode", "trackingId", "messages", "causes"}


def test_a_built_package_serves_the_repositorys_document(tmp_path: Path) -> None:
    """setup.py copies openapi/openapi.yaml into the wheel (as `pip install .` and the Docker
    image build it), and the installed package serves that copy."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "gateway", source / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "openapi", source / "openapi")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, source)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    installed = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("gateway/openapi.yaml") == DOCUMENT.read_bytes()
        # The console's stylesheet and script, as package data.
        assert {"gateway/console/static/console.css", "gateway/console/static/console.js"} <= set(
            archive.namelist()
        )
        archive.extractall(installed)
    found = subprocess.run(
        [sys.executable, "-c", "from gateway.api import docs; print(docs.document_file())"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(installed), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == installed / "gateway" / "openapi.yaml"


def test_the_docker_image_builds_the_package_with_the_document() -> None:
    copied = {
        source
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    }
    assert {"setup.py", "openapi", "gateway", "pyproject.toml"} <= copied, copied
