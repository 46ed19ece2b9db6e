"""Errors a use-case raises; the API turns each into its status code and the error format."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import ValidationError


class ApiError(Exception):
    status = 500

    def __init__(
        self,
        message: str,
        *,
        causes: Sequence[str] = (),
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.causes = list(causes)
        self.headers = headers
        if status is not None:
            self.status = status


class Invalid(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Gone(ApiError):
    status = 410


class Unprocessable(ApiError):
    status = 422


class TooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    """Over a limit: the message and the Retry-After header say when to try again."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        seconds = retry_after_seconds(retry_after)
        super().__init__(f"{message}; try again in {seconds} s", headers={"Retry-After": str(seconds)})


def retry_after_seconds(wait: float) -> int:
    """Retry-After takes whole seconds; rounding up never invites a retry that is refused."""
    return max(1, math.ceil(wait))


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem, naming the field in the wire format's terms."""
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        lines.append(f"{where}: {error['msg']}")
    return lines
