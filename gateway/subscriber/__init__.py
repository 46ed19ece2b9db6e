"""The subscriber kit: what a subscriber of the gateway needs, and nothing of the server.

It imports the standard library, httpx, starlette and gateway/domain/signing.py (itself
standard library only), so a subscriber can use it without the gateway's database, queue or
Redis dependencies (tests/unit/test_subscriber_kit.py checks it).

    from gateway.subscriber import LATER, Delivery, subscriber_app, verify, complete
"""

from gateway.subscriber.app import LATER, Handler, Later, later, subscriber_app
from gateway.subscriber.callbacks import CallbackError, complete, fail, heartbeat
from gateway.subscriber.delivery import Delivery, InvalidDelivery, LastRun, Mode, RunTrigger, parse
from gateway.subscriber.signatures import TOLERANCE, SignatureError, verify

__all__ = [
    "LATER",
    "TOLERANCE",
    "CallbackError",
    "Delivery",
    "Handler",
    "InvalidDelivery",
    "LastRun",
    "Later",
    "Mode",
    "RunTrigger",
    "SignatureError",
    "complete",
    "fail",
    "heartbeat",
    "later",
    "parse",
    "subscriber_app",
    "verify",
]
