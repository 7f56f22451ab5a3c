"""The mocked OpenRouter-compatible provider."""

from harness.provider.engine import (
    Answer,
    ErrorAnswer,
    Outgoing,
    ProviderCall,
    ProviderControl,
    RawAnswer,
    Reply,
    ScriptedProvider,
)

__all__ = [
    "Answer",
    "ErrorAnswer",
    "Outgoing",
    "ProviderCall",
    "ProviderControl",
    "RawAnswer",
    "Reply",
    "ScriptedProvider",
]
