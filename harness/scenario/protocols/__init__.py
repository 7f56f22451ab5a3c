"""Protocols: how the conversation-level steps speak to a backend (one adapter each).

- ``contract`` (:mod:`.contract`): the chat API of CONTRACT.md; the default.
- ``ai-sdk`` (:mod:`.aisdk`): the AI SDK 5 UI message stream, as
  ``toUIMessageStreamResponse()`` produces it (vercel/ai-chatbot's ``POST /api/chat``).

A scenario says which protocols it speaks with ``protocol:`` (a name or a list;
default ``contract``); a run picks one with ``--protocol`` or a profile's
``protocol:``, and runs the scenarios that speak it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.profile import Profile
    from harness.scenario.protocols.base import Adapter

NAMES = ("contract", "ai-sdk")
DEFAULT = "contract"


def adapter(name: str, profile: Profile | None = None) -> Adapter:
    """The adapter of protocol ``name`` (its routes and login from ``profile``)."""
    if name == "contract":
        from harness.scenario.protocols.contract import Contract

        return Contract()
    if name == "ai-sdk":
        from harness.scenario.protocols.aisdk import AiSdk

        return AiSdk(profile)
    raise ConfigError(f"unknown protocol {name!r}", hint="known protocols: " + ", ".join(NAMES))


__all__ = ["DEFAULT", "NAMES", "adapter"]
