"""What the runner needs from a target: an HTTP client and a provider engine."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from harness.provider import ScriptedProvider


@dataclass
class Target:
    """A started backend: ``client`` reaches it, ``provider`` answers its upstream calls."""

    name: str
    client: httpx.AsyncClient
    provider: ScriptedProvider
    provider_timeout_ms: int
    description: str = ""
    provider_api_key: str = "chat-harness-test-key"  # OPENROUTER_API_KEY given to the backend
