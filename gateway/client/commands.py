"""The client commands of `gateway`: their parsers, and running one with the exit codes scripts
rely on (0 done, 1 the API refused or could not be reached, 2 a usage error)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from gateway.client import catalog, config, invocations
from gateway.client.inputs import UsageError

COMMANDS = frozenset({"login", "triggers", "subscriptions", "invoke", "invocations"})


def add_parsers(commands: Any) -> None:
    """Add the client commands to `gateway`'s subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the API's JSON, for scripts")
    login = commands.add_parser(
        "login", help="save a gateway's URL and an API client's credentials for these commands"
    )
    login.add_argument("--url", help=f"the gateway's base URL (default: {config.URL}, else asked)")
    login.add_argument("--client-id", help=f"default: {config.CLIENT_ID}, else asked")
    login.add_argument(
        "--client-secret-stdin", action="store_true",
        help=f"read the secret from standard input (default: {config.CLIENT_SECRET}, else asked)",
    )  # fmt: skip
    login.set_defaults(handler=None)
    catalog.add_parsers(commands, common)
    invocations.add_parsers(commands, common)


def run(args: argparse.Namespace) -> int:
    from gateway.client.api import Api, ApiError  # here: httpx only for the client commands

    try:
        if args.command == "login":
            return login(args)
        api = Api(config.load())
        try:
            args.handler(api, args)
        finally:
            api.close()
    except (UsageError, config.ConfigError) as exc:
        print(f"gateway {args.command}: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"gateway {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def login(args: argparse.Namespace) -> int:
    """Check the credentials by getting a token, then save them (the secret is never shown)."""
    from gateway.client.api import Api

    credentials = config.Credentials(
        url=args.url or os.environ.get(config.URL) or _ask("Gateway URL: "),
        client_id=args.client_id or os.environ.get(config.CLIENT_ID) or _ask("Client id: "),
        client_secret=_secret(args),
    )
    api = Api(credentials)
    try:
        api.authenticate()
    finally:
        api.close()
    saved = config.save(credentials)
    print(f"logged in to {credentials.url} as {credentials.client_id}; saved in {saved}")
    return 0


def _secret(args: argparse.Namespace) -> str:
    if args.client_secret_stdin:
        secret = sys.stdin.readline().strip()
    else:
        secret = os.environ.get(config.CLIENT_SECRET) or _ask("Client secret: ", hidden=True)
    if not secret:
        raise UsageError("no client secret")
    return secret


def _ask(prompt: str, hidden: bool = False) -> str:
    if not sys.stdin.isatty():
        raise UsageError(f"{prompt.rstrip(': ').lower()} is needed: give it as an option or variable")
    answer = getpass.getpass(prompt) if hidden else input(prompt)
    if not answer.strip():
        raise UsageError(f"no {prompt.rstrip(': ').lower()}")
    return answer.strip()
