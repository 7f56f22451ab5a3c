"""What the runner needs from a target: an HTTP client, a provider engine, and whether
it still runs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from harness.errors import TargetError
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

    def check_alive(self) -> None:
        """A started backend that died stops the run at once, with its last words."""
        if self.alive is None or self.alive():
            return
        tail = ""
        if self.log:
            with contextlib.suppress(OSError), open(
                    self.log, encoding="utf-8", errors="replace") as log:
                tail = "".join(log.readlines()[-20:])
        raise TargetError(f"the backend exited during the run; its log ({self.log}) "
                          f"ends:\n{tail}", hint="the failures above may show what killed it")
