"""What the runner needs from a target: an HTTP client and a provider engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from harness.provider import ProviderControl


@dataclass
class Target:
    """A started backend: ``client`` reaches it, ``provider`` answers its upstream calls."""

    name: str
    client: httpx.AsyncClient
    provider: ProviderControl  # the engine in process, or a RemoteProvider
    provider_timeout_ms: int
    description: str = ""
    provider_api_key: str = "chat-harness-test-key"  # OPENROUTER_API_KEY given to the backend
    log: str | None = None  # where the backend's output goes (black box)
    alive: Callable[[], bool] | None = None  # false once a started backend has exited
