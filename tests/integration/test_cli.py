"""The client commands (`gateway login`, `triggers`, `subscriptions`, `invoke`, `invocations`),
run as the real `gateway` command in processes of their own against a running gateway with a
real subscriber: their output, their `--json` parsed back, and their exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import CLIENT_ID, CLIENT_SECRET, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer

TRIGGERS = """\
- id: cli:approver
  name: Approver
  type: REQUEST_RESPONSE
  outputSchema: {type: object, required: [approver]}
- id: cli:notice
  name: Notice
  type: FIRE_AND_FORGET
"""


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def environment(home: Path, **extra: str) -> dict[str, str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    # Wide, so that a table's ids are not folded onto two lines.
    return {**clean, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), "COLUMNS": "250", **extra}


async def gateway(home: Path, *args: str, stdin: str = "", **env: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *args,
        env=environment(home, **env), cwd=home,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 30)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def log_in(home: Path, url: str, secret: str = CLIENT_SECRET) -> Ran:
    return await gateway(
        home, "login", "--url", url, "--client-id", CLIENT_ID, "--client-secret-stdin", stdin=secret + "\n"
    )


async def test_login_saves_the_credentials_for_the_owner_alone_and_checks_them(tmp_path: Path) -> None:
    async with start_gateway(tmp_path) as client:
        url = client.settings.public_url
        unknown = await gateway(tmp_path, "triggers", "list")
        assert unknown.code == 2 and "gateway login" in unknown.err, unknown

        refused = await log_in(tmp_path, url, secret="wrong-secret")
        assert refused.code == 1, refused
        assert "tracking id" in refused.err and "Traceback" not in refused.err
        assert not (tmp_path / "config" / "gateway" / "credentials.json").exists()

        done = await log_in(tmp_path, url)
        assert done.code == 0, done
        saved = tmp_path / "config" / "gateway" / "credentials.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert json.loads(saved.read_text())["client_secret"] == CLIENT_SECRET
        assert CLIENT_SECRET not in done.out + done.err

        # The variables override the file: a gateway that is not there is one line, exit 1.
        away = await gateway(tmp_path, "triggers", "list", GATEWAY_URL="http://127.0.0.1:9")
        assert away.code == 1 and "cannot reach the gateway at http://127.0.0.1:9" in away.err, away
        assert len(away.err.strip().splitlines()) == 1


async def test_define_subscribe_invoke_inspect_and_replay(tmp_path: Path, subscriber: Subscriber) -> None:
    async with start_gateway(tmp_path) as client:
        assert (await log_in(tmp_path, client.settings.public_url)).code == 0
        approver, failing = await define_and_subscribe(tmp_path, subscriber)

        answered = await gateway(
            tmp_path, "invoke", "cli:approver", "--input", '{"who": "ann"}', "--wait", "--json"
        )
        assert answered.code == 0, answered
        [status] = answered.json()
        assert status["status"] == "COMPLETED" and status["subscriptionId"] == approver
        assert status["completeInvocationInput"]["output"] == {"approver": "ada"}

        (tmp_path / "input.json").write_text('{"event": "joined"}')
        raised = await gateway(tmp_path, "invoke", "cli:notice", "--input", "@input.json")
        assert raised.code == 0, raised
        notice = (await client.start("cli:notice", {"event": "left"}))[0]["id"]
        assert notice not in raised.out
        assert (await client.final_status(notice))["status"] == "FAILED"

        await check_list_and_show(tmp_path, client, notice)
        await check_replay(tmp_path, client, notice, failing, status["id"])
        await check_errors(tmp_path)
        await check_every_page_is_listed(tmp_path, client)


async def check_every_page_is_listed(home: Path, client: GatewayClient) -> None:
    """More triggers than the API's largest page (250): the list reads every page."""
    for n in range(251):
        await client.create_trigger(f"cli:many-{n:03}", name=f"Many {n}", type="FIRE_AND_FORGET")
    listed = await gateway(home, "triggers", "list", "--json")
    ids = [t["id"] for t in listed.json()]
    assert len(ids) == len(set(ids)) > 251  # none twice (the pages do not overlap)
    assert {f"cli:many-{n:03}" for n in range(251)} <= set(ids)


async def define_and_subscribe(home: Path, subscriber: Subscriber) -> tuple[str, str]:
    (home / "triggers.yaml").write_text(TRIGGERS)
    created = await gateway(home, "triggers", "apply", "-f", "triggers.yaml")
    assert created.code == 0, created
    assert created.out.splitlines() == ["created trigger cli:approver", "created trigger cli:notice"]
    (home / "triggers.json").write_text(
        json.dumps({"id": "cli:notice", "name": "Notice v2", "type": "FIRE_AND_FORGET"})
    )
    updated = await gateway(home, "triggers", "apply", "-f", "triggers.json", "--json")
    assert updated.code == 0 and updated.json()[0]["name"] == "Notice v2", updated
    listed = await gateway(home, "triggers", "list", "--json")
    assert {"cli:approver", "cli:notice"} <= {t["id"] for t in listed.json()}

    approve = subscriber.endpoint("approve", answer(200, {"approver": "ada"}))
    sub = await gateway(
        home, "subscriptions", "create", "--trigger", "cli:approver", "--url", approve, "--json"
    )
    assert sub.code == 0, sub
    refuse = subscriber.endpoint("refuse", answer(400, {"no": "thanks"}))
    failing = await gateway(
        home, "subscriptions", "create", "--trigger", "cli:notice", "--url", refuse, "--name", "refuser"
    )
    assert failing.code == 0 and "signing secret" in failing.err, failing
    table = await gateway(home, "subscriptions", "list")
    assert "refuser" in table.out and refuse in table.out and "SYNC" in table.out, table
    only = await gateway(home, "subscriptions", "list", "--trigger", "cli:notice", "--json")
    [refuser] = only.json()
    return str(sub.json()["id"]), str(refuser["id"])


async def check_list_and_show(home: Path, client: GatewayClient, failed: str) -> None:
    listed = await gateway(
        home, "invocations", "list", "--status", "FAILED", "--trigger", "cli:notice", "--json"
    )
    assert listed.code == 0, listed
    assert failed in {status["id"] for status in listed.json()}
    assert {status["status"] for status in listed.json()} == {"FAILED"}
    table = await gateway(home, "invocations", "list")
    assert failed in table.out and "COMPLETED" in table.out and "FAILED" in table.out, table

    shown = await gateway(home, "invocations", "show", failed)
    assert shown.code == 0, shown
    for event in ("created", "attempt 1", "HTTP 400", "failed"):
        assert event in shown.out, (event, shown.out)
    timeline = (await gateway(home, "invocations", "show", failed, "--json")).json()
    assert timeline["status"]["id"] == failed and timeline["attempts"][0]["statusCode"] == 400


async def check_replay(
    home: Path, client: GatewayClient, failed: str, subscription: str, answered: str
) -> None:
    again = await gateway(home, "invocations", "replay", failed)
    assert again.code == 0 and f"replaying {failed}: PENDING" in again.out, again
    final = await client.final_status(failed)
    assert final["status"] == "FAILED" and final["attempts"] == 2
    # Both of the refusing subscription's invocations failed: both go again.
    replayed = await gateway(home, "invocations", "replay", "--subscription", subscription, "--since", "1h")
    assert replayed.code == 0, replayed
    assert f"replayed 2 invocations of subscription {subscription}" in replayed.out
    assert replayed.out.splitlines()[-1] == "2 FAILED", replayed  # followed to their new ends
    # A request-response invocation its subscriber answered was accepted: the API refuses.
    refused = await gateway(home, "invocations", "replay", answered)
    assert refused.code == 1 and "HTTP 409" in refused.err, refused


async def check_errors(home: Path) -> None:
    missing = await gateway(home, "invoke", "cli:nothing")
    assert missing.code == 1 and "cli:nothing" in missing.err and "HTTP 404" in missing.err, missing
    assert "Traceback" not in missing.err
    for args in (
        ["invoke", "cli:approver", "--input", "{not json"],
        ["invocations", "replay"],
        ["invocations", "replay", "--subscription", "s"],
        ["invocations", "list", "--status", "LOST"],
        ["triggers", "apply"],
        ["invocations", "tail", "--interval", "-1"],
        ["invocations", "replay", "--subscription", "s", "--since", "99999999999d"],
    ):
        wrong = await gateway(home, *args)
        assert wrong.code == 2 and wrong.err and "Traceback" not in wrong.err, (args, wrong)


async def test_tail_follows_new_invocations_until_ctrl_c(tmp_path: Path, subscriber: Subscriber) -> None:
    async with start_gateway(tmp_path) as client:
        await client.create_trigger("cli:tail")
        await client.subscribe("cli:tail", subscriber.endpoint("ok", answer(200, {})))
        env = environment(
            tmp_path,
            GATEWAY_URL=client.settings.public_url,
            GATEWAY_CLIENT_ID=CLIENT_ID,
            GATEWAY_CLIENT_SECRET=CLIENT_SECRET,
        )
        lines = await tail(client, env, "--json")
        assert all(json.loads(line)["triggerId"] == "cli:tail" for line in lines)
        # On a terminal, a live table.
        live = await tail(client, {**env, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"})
        assert any("cli:tail" in line for line in live)


async def tail(client: GatewayClient, env: dict[str, str], *options: str) -> list[str]:
    """Run `invocations tail` while a start happens; Ctrl-C; its output's lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "invocations", "tail", "--interval", "0.2", *options,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    [started] = await client.start("cli:tail", {})
    async with asyncio.timeout(15):
        seen = b""
        while started["id"].encode() not in seen:
            chunk = await process.stdout.read(4096)
            assert chunk, (await process.communicate())[1].decode()  # it ended before showing it
            seen += chunk
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, err
    assert b"Traceback" not in err
    return (seen + out).decode().splitlines()
