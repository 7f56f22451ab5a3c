"""Settings of the reference backend, read from the environment (C-RUN-1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# At least 32 bytes: PyJWT warns about shorter HMAC keys (RFC 7518 section 3.2).
DEFAULT_JWT_SECRET = "chat-harness-reference-jwt-secret-0123456789"
DEFAULT_PROVIDER_TIMEOUT_MS = 30_000
DEFAULT_DATABASE_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Settings:
    """Everything the backend needs; built by the harness or from the environment."""

    database_url: str
    provider_base_url: str
    provider_api_key: str = "test-key"
    jwt_secret: str = DEFAULT_JWT_SECRET
    provider_timeout_ms: int = DEFAULT_PROVIDER_TIMEOUT_MS
    mutants: frozenset[str] = field(default_factory=frozenset)
    variants: frozenset[str] = field(default_factory=frozenset)
    # How long a request waits for a pooled database connection before it is
    # answered 503 service_unavailable (C-ERR-2: database unreachable).
    database_timeout_ms: int = DEFAULT_DATABASE_TIMEOUT_MS

    def __post_init__(self) -> None:
        # Accept any iterable of names (a list, a set) but keep the field hashable.
        object.__setattr__(self, "mutants", frozenset(self.mutants))
        object.__setattr__(self, "variants", frozenset(self.variants))
        if not self.database_url:
            raise ValueError("Settings.database_url is empty (set DATABASE_URL)")
        if not self.provider_base_url:
            raise ValueError("Settings.provider_base_url is empty (set OPENROUTER_BASE_URL)")
        if self.provider_timeout_ms <= 0:
            raise ValueError(
                f"Expected provider_timeout_ms > 0 but got {self.provider_timeout_ms!r}"
            )
        if self.database_timeout_ms <= 0:
            raise ValueError(
                f"Expected database_timeout_ms > 0 but got {self.database_timeout_ms!r}"
            )
        # Imported here: mutants.py imports nothing from this module, but keeping
        # the import local avoids a cycle if it ever does.
        from harness.reference.mutants import check_mutant_names
        from harness.reference.variants import check_variant_names

        check_mutant_names(self.mutants)
        check_variant_names(self.variants)

    @property
    def completions_url(self) -> str:
        return self.provider_base_url.rstrip("/") + "/chat/completions"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the C-RUN-1 variables, plus CHAT_HARNESS_MUTANT and CHAT_HARNESS_VARIANT
        (comma-separated names)."""
        database_url = environ.get("DATABASE_URL", "")
        base_url = environ.get("OPENROUTER_BASE_URL", "")
        if not database_url:
            raise ValueError("DATABASE_URL is not set. Hint: DATABASE_URL=postgresql://…")
        if not base_url:
            raise ValueError(
                "OPENROUTER_BASE_URL is not set. Hint: OPENROUTER_BASE_URL=http://127.0.0.1:9100/api/v1"
            )
        mutants = _names(environ, "CHAT_HARNESS_MUTANT")
        variants = _names(environ, "CHAT_HARNESS_VARIANT")
        return cls(
            database_url=database_url,
            provider_base_url=base_url,
            provider_api_key=environ.get("OPENROUTER_API_KEY") or "test-key",
            jwt_secret=environ.get("JWT_SECRET") or DEFAULT_JWT_SECRET,
            provider_timeout_ms=_positive_int(
                environ, "PROVIDER_TIMEOUT_MS", DEFAULT_PROVIDER_TIMEOUT_MS
            ),
            mutants=mutants,
            variants=variants,
            database_timeout_ms=_positive_int(
                environ, "DATABASE_TIMEOUT_MS", DEFAULT_DATABASE_TIMEOUT_MS
            ),
        )


def _names(environ: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(n.strip() for n in environ.get(name, "").split(",") if n.strip())


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"Expected {name} to be a positive integer but got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"Expected {name} to be a positive integer but got {raw!r}")
    return value
