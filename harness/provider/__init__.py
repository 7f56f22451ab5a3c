"""The mocked OpenRouter-compatible provider."""

from harness.provider.engine import (
    Answer,
    ErrorAnswer,
    Outgoing,
    Plan,
    ProviderCall,
    ProviderControl,
    RawAnswer,
    Reply,
    ScriptedProvider,
    Side,
    StepEnd,
)

__all__ = [
    "Answer",
    "ErrorAnswer",
    "Outgoing",
    "Plan",
    "ProviderCall",
    "ProviderControl",
    "RawAnswer",
    "Reply",
    "ScriptedProvider",
    "Side",
    "StepEnd",
]
