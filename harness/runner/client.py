"""Moved to :mod:`harness.scenario.frontend` (below the checks); kept for imports."""

from harness.scenario.frontend import Chat, ChatClient, Clock, Sync

__all__ = ["Chat", "ChatClient", "Clock", "Sync"]
