"""The mocked OpenRouter-compatible provider."""

from harness.provider.engine import (
    Answer,
    ErrorAnswer,
    Outgoing,
    ProviderCall,
    RawAnswer,
    Reply,
    ScriptedProvider,
)

__all__ = [
    "Answer",
    "ErrorAnswer",
    "Outgoing",
    "ProviderCall",
    "RawAnswer",
    "Reply",
    "ScriptedProvider",
]
