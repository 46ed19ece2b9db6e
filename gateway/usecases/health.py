"""Is this process able to serve? (The database answers.)"""

from __future__ import annotations

from sqlalchemy import text

from gateway.runtime import Runtime


async def database_problem(rt: Runtime) -> str | None:
    """None when the database answers; else the name of the error it gave."""
    try:
        async with rt.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        return type(exc).__name__
    return None
