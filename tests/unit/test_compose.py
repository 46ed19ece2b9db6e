"""docker-compose.yml is checked here, since no Docker engine runs in CI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
