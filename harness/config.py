"""Run settings, gathered from command-line options and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError

DEFAULT_JWT_SECRET = "chat-harness-jwt-secret-at-least-32-bytes"


def _find_fixtures() -> Path:
    """``fixtures/`` of the checkout, else the copy inside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (Path.cwd() / "fixtures", here.parent / "fixtures", here / "fixtures"):
        if (candidate / "schema.sql").is_file():
            return candidate
    return here.parent / "fixtures"


@dataclass(frozen=True)
class RunConfig:
    target: str = "reference"
    mutants: frozenset[str] = field(default_factory=frozenset)
    db: str = "auto"
    db_url: str | None = None
    db_image: str | None = None
    fixtures: Path = field(default_factory=_find_fixtures)
    jwt_secret: str = DEFAULT_JWT_SECRET
    # PROVIDER_TIMEOUT_MS given to the backend: short, so timeout scenarios stay fast
    provider_timeout_ms: int = 1000
    request_timeout_s: float = 30.0

    @property
    def schema(self) -> Path:
        return self.fixtures / "schema.sql"

    @classmethod
    def from_options(
        cls, *, target: str | None = None, mutants: list[str] | None = None,
        db: str | None = None, db_url: str | None = None, db_image: str | None = None,
        fixtures: str | None = None,
    ) -> RunConfig:
        url = db_url or os.environ.get("CHAT_HARNESS_DATABASE_URL") or None
        names: set[str] = set()
        for item in mutants or []:
            names.update(n.strip() for n in item.split(",") if n.strip())
        if names:
            from harness.reference.mutants import MUTANTS

            unknown = sorted(names - set(MUTANTS))
            if unknown:
                raise ConfigError(
                    f"unknown mutant {', '.join(unknown)}",
                    hint="known mutants: " + ", ".join(sorted(MUTANTS)),
                )
        if target not in (None, "reference"):
            raise ConfigError(f"unknown target {target!r}", hint="use --target reference")
        return cls(
            target=target or "reference",
            mutants=frozenset(names),
            db=db or ("url" if url else os.environ.get("CHAT_HARNESS_DB", "auto")),
            db_url=url,
            db_image=db_image,
            fixtures=Path(fixtures) if fixtures else _find_fixtures(),
        )
