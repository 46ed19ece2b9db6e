"""Where the command line finds its gateway and credentials: the environment, else the file
`gateway login` wrote in the user's config directory."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

URL, CLIENT_ID, CLIENT_SECRET = "GATEWAY_URL", "GATEWAY_CLIENT_ID", "GATEWAY_CLIENT_SECRET"
# Read by the client commands only: `gateway serve` must not call them unknown settings.
ENVIRONMENT = frozenset({URL, CLIENT_ID, CLIENT_SECRET})


class ConfigError(Exception):
    """No usable credentials: the user has to log in (or set the variables)."""


@dataclass(frozen=True)
class Credentials:
    url: str
    client_id: str
    client_secret: str


def path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "gateway" / "credentials.json"


def load(environ: Mapping[str, str] = os.environ) -> Credentials:
    """The saved credentials, each field overridden by its variable when that is set."""
    saved = _read(path(environ))
    values = {
        "url": environ.get(URL) or saved.get("url", ""),
        "client_id": environ.get(CLIENT_ID) or saved.get("client_id", ""),
        "client_secret": environ.get(CLIENT_SECRET) or saved.get("client_secret", ""),
    }
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(
            f"no {', '.join(missing)}: run `gateway login` or set {URL}, {CLIENT_ID} and {CLIENT_SECRET}"
        )
    return Credentials(**values)


def save(credentials: Credentials, environ: Mapping[str, str] = os.environ) -> Path:
    """Write the file atomically, readable by its owner only from the moment it exists (a
    chmod after writing would leave the secret readable for a moment)."""
    target = path(environ)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(credentials), file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def _read(file: Path) -> dict[str, str]:
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}; run `gateway login` again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file} is not a credentials file; run `gateway login` again")
    return {key: value for key, value in data.items() if isinstance(value, str)}
