"""``python -m bench.index_upkeep``: what the invocations table's indexes cost a SYNC round
trip's three writes (insert PENDING, claim DISPATCHING, record COMPLETED), each its own
transaction on a SQLite file in WAL mode as the gateway runs it, over a table with history.
Compared with the same table with its primary key alone, in one run, best of three."""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from gateway.domain.model import Invocation

TABLE = Invocation.__table__  # type: ignore[attr-defined]
INSERT = (
    "INSERT INTO invocations (id, trigger_id, trigger_type, subscription_id, subscription_name,"
    " dispatch_mode, type, status, created, deadline, queued_at, attempts, attempts_at_replay, source,"
    " fallback) VALUES (?, 't:x', 'REQUEST_RESPONSE', ?, 's', 'SYNC', 'TEST', 'PENDING', ?, ?, ?, 0, 0,"
    " 'START', 0)"
)
CLAIM = (
    "UPDATE invocations SET status = 'DISPATCHING', dispatched_at = ?, attempts = attempts + 1 WHERE id = ?"
)
RECORD = "UPDATE invocations SET status = 'COMPLETED', completed = ?, output = '{}' WHERE id = ?"


def ddl(with_indexes: bool) -> list[str]:
    dialect = create_engine("sqlite://").dialect
    statements = [str(CreateTable(TABLE).compile(dialect=dialect))]
    if with_indexes:
        statements += [str(CreateIndex(index).compile(dialect=dialect)) for index in TABLE.indexes]
    return statements


def cycle(db: sqlite3.Connection, n: int, day: int) -> None:
    stamp = f"2026-12-{day:02d} 00:00:{n % 60:02d}.{n:06d}"
    invocation_id = uuid.uuid4().hex
    for statement, params in (
        (INSERT, (invocation_id, f"sub{n % 50}", stamp, stamp, stamp)),
        (CLAIM, (stamp, invocation_id)),
        (RECORD, (stamp, invocation_id)),
    ):
        db.execute("BEGIN")
        db.execute(statement, params)
        db.execute("COMMIT")


def measure(with_indexes: bool, history: int, cycles: int) -> float:
    """Microseconds per round trip's writes, after ``history`` earlier ones."""
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(Path(folder) / "bench.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in ddl(with_indexes):
            db.execute(statement)
        for n in range(history):
            cycle(db, n, 1 + n % 28)
        started = time.perf_counter()
        for n in range(cycles):
            cycle(db, n, 29)
        elapsed = time.perf_counter() - started
        db.close()
    return elapsed / cycles * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=20_000, help="round trips already in the table")
    parser.add_argument("--cycles", type=int, default=3_000, help="round trips measured")
    args = parser.parse_args()
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):
        for with_indexes in (True, False):
            runs[with_indexes].append(measure(with_indexes, args.history, args.cycles))
    names = [str(index.name) for index in TABLE.indexes]
    print(f"over {args.history:,} earlier round trips, µs per insert + claim + record (best of 3):")
    print(f"  primary key alone: {min(runs[False]):.0f}")
    print(f"  with the {len(names)} indexes: {min(runs[True]):.0f}  ({', '.join(sorted(names))})")


if __name__ == "__main__":
    main()
