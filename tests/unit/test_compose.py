"""docker-compose.yml is checked here, since no Docker engine runs in CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_services_are_well_formed() -> None:
    services = compose()["services"]
    assert services, "docker-compose.yml defines no services"
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert isinstance(service.get("command", []), list), f"{name}: use the exec form for command"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in compose().get("volumes", {}), volume
        test = service.get("healthcheck", {}).get("test")
        assert test is None or test[0] in ("CMD", "CMD-SHELL"), name


def test_compose_commands_are_real_gateway_commands() -> None:
    """Each command parses with the CLI's own parser, so compose and the README agree."""
    parser = build_parser()
    for service in compose()["services"].values():
        command = service.get("command")
        if command and command[0] == "gateway":
            parser.parse_args(command[1:])
    readme = (ROOT / "README.md").read_text()
    assert "gateway serve" in readme
