"""Configuration, checked at import time.

In strict mode (ENV in {staging, prod}, or CI_STRICT=1) a missing or
wrong-shaped DATABASE_URL / REDIS_URL raises here, so `uvicorn server:app`
exits non-zero before it ever binds its port. This module imports only the
standard library so that failure is fast.
"""

import os
import re
import sys
from dataclasses import dataclass

STRICT_ENVS = {"staging", "prod"}


class ConfigError(RuntimeError):
    """Strict-mode configuration is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    env: str
    strict: bool
    database_url: str | None
    redis_url: str | None
    probe_timeout: float
    version: str
    git_sha: str | None


def mask_url(url: str | None) -> str:
    """`scheme://user:PASS@host` -> `scheme://user:***@host`, for logs."""
    if not url:
        return "<unset>"
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def load() -> Settings:
    env = os.environ.get("ENV", "dev").strip().lower()
    strict = env in STRICT_ENVS or os.environ.get("CI_STRICT", "") == "1"
    database_url = os.environ.get("DATABASE_URL") or None
    redis_url = os.environ.get("REDIS_URL") or None

    if strict:
        problem = None
        if database_url is None:
            problem = "DATABASE_URL is not set"
        elif database_url.split(":", 1)[0].split("+", 1)[0] == "sqlite":
            problem = f"DATABASE_URL uses sqlite ({mask_url(database_url)}); Postgres is required"
        elif redis_url is None:
            problem = "REDIS_URL is not set"
        if problem is not None:
            message = (
                f"strict mode (ENV={env}, CI_STRICT={os.environ.get('CI_STRICT', '')}): {problem}"
            )
            # One plain line first, so the reason leads the traceback.
            print(f"FATAL: {message}", file=sys.stderr, flush=True)
            raise ConfigError(message)

    # Readiness probes must answer fast even when a dependency hangs.
    timeout = float(os.environ.get("READY_PROBE_TIMEOUT_S", "1.5"))
    return Settings(
        env=env,
        strict=strict,
        database_url=database_url,
        redis_url=redis_url,
        probe_timeout=min(max(timeout, 0.1), 2.0),
        version=os.environ.get("APP_VERSION", "0.1.0"),
        git_sha=os.environ.get("GIT_SHA") or None,
    )


settings = load()
