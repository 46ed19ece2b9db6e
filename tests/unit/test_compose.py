"""docker-compose.yml is checked here, since no Docker engine runs in CI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.cli import build_parser
from gateway.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTED = {"postgres", "redis", "migrate", "gateway", "worker"}


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_the_distributed_services_with_health_checks() -> None:
    services = compose()["services"]
    assert set(services) >= DISTRIBUTED
    for name in DISTRIBUTED - {"migrate"}:
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in ("gateway", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_services_are_well_formed() -> None:
    data = compose()
    for name, service in data["services"].items():
        assert "image" in service or "build" in service, name
        assert isinstance(service.get("command", []), list), f"{name}: use the exec form for command"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in data.get("volumes", {}), volume
        for dependency in service.get("depends_on", {}):
            assert dependency in data["services"], f"{name} depends on unknown {dependency}"


def test_compose_environment_names_real_settings() -> None:
    known = {PREFIX + name.upper() for name in Settings.__dataclass_fields__}
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith(PREFIX):
                assert variable in known, f"{name}: {variable} is not a setting"


def test_compose_commands_are_real_gateway_commands_and_in_the_readme() -> None:
    """Each command parses with the CLI's own parser, and the README shows the same ones."""
    parser = build_parser()
    readme = " ".join((ROOT / "README.md").read_text().split())
    header = "".join(re.findall(r"^#.*$", (ROOT / "docker-compose.yml").read_text(), re.M))
    for service in compose()["services"].values():
        command = service.get("command")
        if command and command[0] == "gateway":
            parser.parse_args(command[1:])
            assert " ".join(command[:2]) in readme
    for line in re.findall(r"docker compose [^\n#]+", header):
        assert " ".join(line.split()) in readme, f"README lacks `{line.strip()}`"


def test_each_published_gateway_says_its_own_port_in_its_callback_urls() -> None:
    """GATEWAY_PUBLIC_URL's default (what callbackURL is built from) names the host port the
    service is published on."""
    for name, service in compose()["services"].items():
        public_url = service.get("environment", {}).get("GATEWAY_PUBLIC_URL")
        if public_url is None or "ports" not in service:  # the worker and migrate serve nothing
            continue
        default = re.fullmatch(r"\$\{GATEWAY_PUBLIC_URL:-(http://[^}]+)\}", public_url)
        assert default, f"{name}: GATEWAY_PUBLIC_URL should default, {public_url!r}"
        [published] = service["ports"]
        assert int(published.split(":")[-2]) == urlsplit(default[1]).port, name


def test_postgres_and_redis_are_published_only_for_the_tests_and_only_on_loopback() -> None:
    services = compose()["services"]
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    tests = yaml.safe_load((ROOT / "docker-compose.tests.yml").read_text())["services"]
    assert set(tests) == {"postgres", "redis"}
    for service in tests.values():
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])


def test_the_variables_compose_requires_are_in_the_readme_and_env_example() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required == {"GATEWAY_SECRET_KEY", "GATEWAY_BOOTSTRAP_CLIENT_SECRET"}
    readme = (ROOT / "README.md").read_text()
    running = readme[readme.index("## Two ways to run") : readme.index("## Settings")]
    example = (ROOT / ".env.example").read_text()
    for variable in required:
        assert f"export {variable}=" in running, variable
        assert f"# {variable}=" in example, variable
