"""A small FastAPI backend shaped like the seed's: /api/ready, /api/live,
/api/version, Postgres through SQLAlchemy (asyncpg), Redis through redis-py.

Run with `uvicorn server:app --host 127.0.0.1 --port 8001`.
"""

# Import-time fail-fast comes first, before the heavier imports below.
from config import mask_url, settings  # noqa: I001

import asyncio
import logging
import platform
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

HERE = Path(__file__).resolve().parent
log = logging.getLogger("uvicorn.error")

# The revisions alembic would call head; /api/ready compares the database
# against these.
HEADS = frozenset(ScriptDirectory(str(HERE / "migrations")).get_heads())


def make_engine() -> tuple[AsyncEngine | None, str | None]:
    if settings.database_url is None:
        return None, "DATABASE_URL is not set"
    try:
        # NullPool: every probe opens a fresh connection, so "connected"
        # means the server answered just now, not that a pooled socket
        # once did.
        engine = create_async_engine(
            settings.database_url,
            poolclass=NullPool,
            connect_args={"timeout": settings.probe_timeout},
        )
    except Exception as e:  # non-strict mode may carry any URL
        return None, f"cannot use DATABASE_URL: {type(e).__name__}: {e}"
    return engine, None


ENGINE, ENGINE_ERROR = make_engine()


@dataclass
class Check:
    dependency: str  # as named in a 503 body, e.g. "Redis"
    key: str  # key under "dependencies" and "checks"
    ok: bool
    detail: str
    error: str | None = None


def describe(error: BaseException) -> str:
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {settings.probe_timeout:g} s"
    return mask_url(f"{type(error).__name__}: {error}".strip())


def revisions(ids: set[str] | frozenset[str]) -> str:
    return ", ".join(sorted(ids)) or "no revision"


# SQLSTATE read_only_sql_transaction: the server answers reads but refuses
# writes (a replica promoted wrongly, default_transaction_read_only).
READ_ONLY_SQLSTATE = "25006"


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, through SQLAlchemy's wrapper."""
    orig = getattr(error, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if code:
            return str(code)
    return None


async def database_and_migrations() -> tuple[Check, Check]:
    async def probe() -> tuple[set[str], str | None]:
        """The applied revisions, and why the write sentinel failed (None: it
        did not). The seed asks for read AND write sentinels: a database that
        answers reads but refuses writes is not ready."""
        assert ENGINE is not None
        async with ENGINE.connect() as conn:
            await conn.execute(text("SELECT 1"))
            try:
                result = await conn.execute(text("SELECT version_num FROM alembic_version"))
                applied = set(result.scalars().all())
            except ProgrammingError:  # no alembic_version table: never migrated
                applied = set()
            await conn.rollback()
            try:
                # One row into a temporary table, rolled back: nothing stays,
                # but the server had to accept a write.
                await conn.execute(
                    text(
                        "CREATE TEMPORARY TABLE readiness_write_sentinel"
                        " (checked_at timestamptz) ON COMMIT DROP"
                    )
                )
                await conn.execute(text("INSERT INTO readiness_write_sentinel VALUES (now())"))
            except Exception as e:
                if sqlstate(e) != READ_ONLY_SQLSTATE:
                    raise
                return applied, f"write sentinel refused: {describe(e)}"
            finally:
                await conn.rollback()
            return applied, None

    if ENGINE is None:
        error = ENGINE_ERROR
    else:
        try:
            applied, refused = await asyncio.wait_for(probe(), settings.probe_timeout)
        except Exception as e:
            error = describe(e)
        else:
            at_head = applied == set(HEADS)
            database = (
                Check("Database", "database", True, "connected")
                if refused is None
                else Check("Database", "database", False, "read_only", refused)
            )
            return (
                database,
                Check(
                    "Migrations",
                    "migrations",
                    at_head,
                    "head" if at_head else "pending",
                    None
                    if at_head
                    else f"database at {revisions(applied)}, head is {revisions(HEADS)}",
                ),
            )
    return (
        Check("Database", "database", False, "unreachable", error),
        Check("Migrations", "migrations", False, "unknown", "database unreachable"),
    )


async def redis_check() -> Check:
    if settings.redis_url is None:
        return Check("Redis", "redis", False, "unreachable", "REDIS_URL is not set")

    async def probe() -> None:
        client = aioredis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.probe_timeout,
            socket_timeout=settings.probe_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        await asyncio.wait_for(probe(), settings.probe_timeout)
    except Exception as e:
        return Check("Redis", "redis", False, "unreachable", describe(e))
    return Check("Redis", "redis", True, "connected")


async def run_checks() -> list[Check]:
    # Concurrent, each bounded: a hanging dependency costs at most one timeout.
    (db, migrations), redis_result = await asyncio.gather(
        database_and_migrations(), redis_check()
    )
    return [db, redis_result, migrations]


@asynccontextmanager
async def lifespan(_app: FastAPI):
    log.info(
        "boot: env=%s strict=%s database=%s redis=%s",
        settings.env,
        settings.strict,
        mask_url(settings.database_url),
        mask_url(settings.redis_url),
    )
    for check in await run_checks():
        if check.ok:
            log.info("boot: %s %s", check.dependency.lower(), check.detail)
        else:
            log.warning("boot: %s %s: %s", check.dependency.lower(), check.detail, check.error)
    yield
    if ENGINE is not None:
        await ENGINE.dispose()


app = FastAPI(title="fastapi-backend", version=settings.version, lifespan=lifespan)

# The readiness gauge of the seed's alerting contract: 1 when the last
# /api/ready passed, 0 when it failed (0 until the first check). Exported on
# /metrics as aether_readyz_success{service="fastapi-backend"}.
READY_GAUGE = {"value": 0}


@app.get("/api/live")
async def live() -> dict:
    return {"status": "alive"}


@app.get("/api/version")
async def version() -> dict:
    return {
        "name": "fastapi-backend",
        "version": settings.version,
        "git_sha": settings.git_sha,
        "python": platform.python_version(),
        "env": settings.env,
    }


@app.get("/api/ready")
async def ready() -> JSONResponse:
    checks = await run_checks()
    body: dict = {
        "status": "ok" if all(c.ok for c in checks) else "fail",
        "dependencies": {c.key: c.detail for c in checks},
        "checks": {
            ("db" if c.key == "database" else c.key): {"ok": c.ok, "detail": c.detail}
            | ({"error": c.error} if c.error else {})
            for c in checks
        },
    }
    failed = [c for c in checks if not c.ok]
    READY_GAUGE["value"] = 0 if failed else 1
    if not failed:
        return JSONResponse(body, status_code=200)
    first = failed[0]
    log.warning("ready: 503, %s %s: %s", first.dependency, first.detail, first.error)
    return JSONResponse(
        {"dependency": first.dependency, "error": first.error} | body, status_code=503
    )


@app.get("/metrics")
async def metrics() -> PlainTextResponse:
    text = (
        "# HELP aether_readyz_success Whether the last readiness check passed (1) or failed (0).\n"
        "# TYPE aether_readyz_success gauge\n"
        f'aether_readyz_success{{service="fastapi-backend"}} {READY_GAUGE["value"]}\n'
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
