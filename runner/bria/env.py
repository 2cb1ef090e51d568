"""Where the API is and how to authenticate, from the environment, without importing the
HTTP stack (so a run can open its state and plan before httpx is loaded)."""

from __future__ import annotations

import os

from runner.errors import ConfigError

DEFAULT_BASE_URL = "https://engine.prod.bria-api.com"
TOKEN_ENV = "BRIA_API_TOKEN"
URL_ENV = "BRIA_API_URL"


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
