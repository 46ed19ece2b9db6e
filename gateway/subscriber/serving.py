"""Running a handler as a subscriber from the command line: the examples' and
`gateway example-subscriber`'s host, port and signing secrets."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from gateway.subscriber.app import Handler, subscriber_app

SECRET_VARIABLE = "WEBHOOK_SECRET"  # whitespace-separated: during a rotation, both secrets
SECRET_HELP = (
    f"the subscription's signingSecret (whsec_...), shown when it is created; repeat it during "
    f"a rotation (default: ${SECRET_VARIABLE})"
)
NO_VERIFY_HELP = "accept deliveries without checking their signature (for trying things out only)"


class MissingSecret(ValueError):
    pass


def signing_secrets(
    given: Sequence[str] | None, no_verify: bool, environ: Mapping[str, str] = os.environ
) -> list[str] | None:
    """The secrets to verify with, or None when ``no_verify``; MissingSecret if there are none:
    a subscriber that checks nothing must say so."""
    found = list(given or environ.get(SECRET_VARIABLE, "").split())
    if no_verify:
        return None
    if not found:
        raise MissingSecret(
            f"no signing secret: pass --secret whsec_... (the subscription's signingSecret, shown "
            f"when it is created) or set {SECRET_VARIABLE}; --no-verify accepts unsigned deliveries"
        )
    return found


def serve(handler: Handler, *, host: str, port: int, secrets: list[str] | None, name: str) -> None:
    import uvicorn  # here: the kit itself runs under any ASGI server

    checking = "NOT verifying signatures" if secrets is None else "verifying signatures"
    print(f"{name}: answering POSTs on http://{host}:{port}/ ({checking})", file=sys.stderr, flush=True)
    uvicorn.run(subscriber_app(handler, secrets=secrets), host=host, port=port, log_level="warning")


def main(handler: Handler, argv: Sequence[str] | None = None, *, description: str, port: int) -> None:
    """An example's command line: --host, --port, --secret (or $WEBHOOK_SECRET), --no-verify."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--secret", action="append", help=SECRET_HELP)
    parser.add_argument("--no-verify", action="store_true", help=NO_VERIFY_HELP)
    args = parser.parse_args(argv)
    try:
        secrets = signing_secrets(args.secret, args.no_verify)
    except MissingSecret as exc:
        parser.error(str(exc))
    serve(handler, host=args.host, port=args.port, secrets=secrets, name=parser.prog)
