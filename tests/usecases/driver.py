"""The use cases driven directly, as the API's handlers call them, without HTTP: each method
returns the document the API would answer with, and a refusal raises the use case's error
(domain/errors.py), whose ``status`` is the one the API would answer with."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from starlette.responses import JSONResponse, Response

from gateway.adapters.queue.memory import InProcessQueue
from gateway.domain.documents import (
    ReplayIn,
    RunIn,
    StartInvocationIn,
    SubscriptionIn,
    TestInvocationIn,
    TriggerIn,
    attempt_out,
    invocation_out,
    status_out,
    subscription_out,
    trigger_out,
)
from gateway.domain.errors import ApiError
from gateway.domain.list_query import parse_list_query
from gateway.domain.model import Invocation, Source, Status, Subscription, Trigger
from gateway.runtime import Runtime
from gateway.usecases import callbacks, raise_trigger, replay, statuses, subscriptions, triggers, webhooks
from tests.gateway_client import Polls
from tests.servers import Behaviour, Received

Document = dict[str, Any]


def held(release: asyncio.Event) -> Behaviour:
    """A subscriber that answers 200 {} once ``release`` is set: a delivery kept in flight,
    holding its slot of GATEWAY_DISPATCH_CONCURRENCY, for as long as a test needs."""

    async def respond(_: Received) -> Response:
        await release.wait()
        return JSONResponse({})

    return respond


class Driver(Polls):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.signing_secrets: dict[str, str] = {}

    async def create_trigger(self, trigger_id: str = "test:approver", **fields: Any) -> Document:
        spec = TriggerIn.model_validate(
            {"id": trigger_id, "name": "Approver", "type": "REQUEST_RESPONSE", **fields}
        )
        return trigger_out(await triggers.create(self.rt, spec))

    async def replace_trigger(self, trigger_id: str, **fields: Any) -> Document:
        return trigger_out(
            await triggers.replace(self.rt, TriggerIn.model_validate({"id": trigger_id, **fields}))
        )

    async def subscribe(self, trigger_id: str, url: str, mode: str = "SYNC", **fields: Any) -> Document:
        spec = SubscriptionIn.model_validate(
            {
                "triggerId": trigger_id,
                "name": fields.pop("name", f"sub {mode} {url.rsplit('/', 1)[-1]}"),
                "httpConfig": {"url": url, "httpDispatchMode": mode, **fields.pop("httpConfig", {})},
                **fields,
            }
        )
        sub, trigger_name, secret = await subscriptions.create(self.rt, spec)
        self.signing_secrets[sub.id] = secret
        return subscription_out(sub, trigger_name)

    async def subscription(self, subscription_id: str) -> Document:
        return subscription_out(*await subscriptions.get(self.rt, subscription_id))

    async def patch_subscription(self, subscription_id: str, operations: list[Document]) -> Document:
        return subscription_out(*await subscriptions.patch(self.rt, subscription_id, operations))

    async def start(
        self, trigger_id: str, input: Document, caused_by: str | None = None, **fields: Any
    ) -> list[Document]:
        spec = StartInvocationIn.model_validate({"triggerId": trigger_id, "input": input, **fields})
        started = await raise_trigger.start(
            self.rt,
            spec.triggerId,
            spec.input,
            spec.contentJson,
            tenant_id=spec.tenantId,
            option=spec.option,
            caused_by=caused_by,
        )
        return [invocation_out(inv, self.rt.keys.callback_secret(inv.id)) for inv in started]

    async def test(self, trigger_id: str, **fields: Any) -> list[Document]:
        spec = TestInvocationIn.model_validate({"triggerId": trigger_id, **fields})
        started = await raise_trigger.start(
            self.rt,
            spec.triggerId,
            spec.input,
            spec.contentJson,
            test=True,
            subscription_ids=spec.subscriptionIds,
        )
        return [invocation_out(inv, self.rt.keys.callback_secret(inv.id)) for inv in started]

    async def run(self, subscription_id: str, caused_by: str | None = None, **fields: Any) -> Document:
        """A manual run (POST /trigger-subscriptions/{id}/run)."""
        spec = RunIn.model_validate(fields)
        started = await raise_trigger.raise_run(
            self.rt,
            subscription_id,
            Source.MANUAL,
            spec.payload,
            tenant_id=spec.tenantId,
            caused_by=caused_by,
        )
        return invocation_out(started, self.rt.keys.callback_secret(started.id))

    async def webhook_call(
        self, subscription_id: str, body: bytes, content_type: str = "application/json", **headers: str
    ) -> str:
        """A call to the subscription's webhook URL; the id of what it raised."""
        items = [("content-type", content_type), *headers.items()]
        started = await webhooks.receive(self.rt, subscription_id, body, content_type, items)
        return started.id

    async def status(self, invocation_id: str, wait: float = 0) -> Document:
        return status_out(await statuses.get(self.rt, invocation_id, wait))

    async def attempts(self, invocation_id: str) -> list[Document]:
        query = parse_list_query({}, statuses.ATTEMPTS_LISTABLE)
        logged, _ = await statuses.attempts(self.rt, invocation_id, query)
        return [attempt_out(attempt) for attempt in logged]

    async def replay(self, invocation_id: str) -> Document:
        return status_out(await replay.invocation(self.rt, invocation_id))

    async def replay_subscription(self, subscription_id: str, **fields: Any) -> int:
        spec = ReplayIn.model_validate(fields)
        wanted = {Status(name) for name in spec.statuses}
        return await replay.subscription(self.rt, subscription_id, spec.since, wanted)

    async def statuses(self, **params: str) -> list[Document]:
        query = parse_list_query(params, statuses.LISTABLE)
        rows, _ = await statuses.list_page(self.rt, query)
        return [status_out(inv) for inv in rows]

    async def callback(
        self, metadata: Document, output: Any = None, error: str | None = None, secret: str | None = None
    ) -> None:
        """A callback as the delivered ``_metadata`` tells the subscriber to make it."""
        invocation_id = metadata["callbackURL"].rsplit("/", 2)[-2]
        await callbacks.complete(self.rt, invocation_id, secret or metadata["secret"], output, error)

    async def complete(
        self, metadata: Document, output: Any = None, error: str | None = None, secret: str | None = None
    ) -> int:
        """The same callback; the status code the API would answer it with."""
        try:
            await self.callback(metadata, output, error, secret)
        except ApiError as exc:
            return exc.status
        return 204

    async def settled(self) -> None:
        """Wait until every delivery queued so far has ended. A use case queues what it starts
        before it returns, so after this, what has not arrived was never started."""
        queue = self.rt.queue
        assert isinstance(queue, InProcessQueue)
        async with asyncio.timeout(10):
            while not queue.idle():  # noqa: ASYNC110 (no event to wait on: polled)
                await asyncio.sleep(0.01)

    async def alter(
        self, table: type[Invocation | Subscription | Trigger], row_id: str, **values: Any
    ) -> None:
        """Change a stored row behind the use cases' back, as time passing (a back-dated
        timestamp), a crash or an older version would have left it."""
        async with self.rt.sessions() as session:
            await session.execute(update(table).where(col(table.id) == row_id).values(**values))
            await session.commit()
        # As after a restart: what the catalog cached of the row is gone.
        self.rt.catalog.forget()

    async def stop_loops(self) -> None:
        """Stop this runtime's sweep and schedule loops, so that nothing but the test, calling
        their steps itself, acts on the rows it back-dates. Called first thing, they have done
        at most one round, on the test's empty database."""
        loops = [task for task in asyncio.all_tasks() if task.get_name() in ("sweep", "schedules")]
        assert len(loops) == 2, "bootstrap.open_runtime names these tasks"
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
