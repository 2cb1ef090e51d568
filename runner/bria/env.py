"""Where the API is and how to authenticate, from the environment, without importing the
HTTP stack (so a run can open its state and plan before httpx is loaded)."""

from __future__ import annotations

import os
from typing import TypedDict

from runner.errors import ConfigError


class Tuning(TypedDict, total=False):
    read_timeout: float
    create_timeout: float
    retry_base: float


DEFAULT_BASE_URL = "https://engine.prod.bria-api.com"
TOKEN_ENV = "BRIA_API_TOKEN"
URL_ENV = "BRIA_API_URL"
# Timings for tests against the simulator, which fakes a slow Bria in seconds, not minutes:
# never needed against Bria. Each is a number of seconds, read into a BriaClient argument.
TUNING_ENV = {
    "BRIA_RUN_READ_TIMEOUT": "read_timeout",  # GETs (default 30 s)
    "BRIA_RUN_CREATE_TIMEOUT": "create_timeout",  # POSTs (default 90 s)
    "BRIA_RUN_RETRY_BASE": "retry_base",  # first back-off of a retry (default up to 4 s)
}


def api_root(base_url: str) -> str:
    """The root that /v1 and /v2 hang under; a URL given with /v1 or /v2 is forgiven."""
    root = base_url.strip().rstrip("/")
    for suffix in ("/v1", "/v2"):
        root = root.removesuffix(suffix)
    return root


def base_url_from_env() -> str:
    return api_root(os.environ.get(URL_ENV) or DEFAULT_BASE_URL)


def token_from_env() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(
            "BRIA_API_TOKEN is not set. Create an API token in the Bria console "
            "(Account -> API Keys) and export it as BRIA_API_TOKEN, or try bria-run "
            "without one using --simulate."
        )
    return token


def tuning_from_env() -> Tuning:
    """The ``TUNING_ENV`` settings present in the environment, as BriaClient arguments."""
    found = Tuning()
    for name, argument in TUNING_ENV.items():
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        try:
            found[argument] = float(value)  # type: ignore[literal-required]
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a number of seconds; unset it or give "
                              "one such as 2.5") from None
    return found
