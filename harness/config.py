"""Run settings, gathered from command-line options and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.profile import Profile

DEFAULT_JWT_SECRET = "chat-harness-jwt-secret-at-least-32-bytes"


def _shipped(name: str, present: str) -> Path | None:
    """``name/`` of the current folder, else of the checkout, else the copy a wheel
    carries (``harness/_bundled/``, see setup.py): the first holding ``present``."""
    here = Path(__file__).resolve().parent
    for candidate in (Path.cwd() / name, here.parent / name, here / "_bundled" / name):
        if (candidate / present).exists():
            return candidate
    return None


def _find_fixtures() -> Path:
    return _shipped("fixtures", "schema.sql") or Path("fixtures")


def default_scenarios() -> str:
    """What ``chat-harness run`` runs without paths: ``scenarios/`` of the current folder
    whenever there is one (whatever it holds), else the scenarios that come with the
    harness (the checkout's, or the wheel's copy)."""
    if (Path.cwd() / "scenarios").is_dir():
        return "scenarios"
    found = bundled_scenarios()
    return str(found) if found is not None else "scenarios"


def bundled_scenarios() -> Path | None:
    """The contract suite that comes with the harness: the checkout's ``scenarios/`` (an
    editable install), else the wheel's copy under ``harness/_bundled/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "scenarios", here / "_bundled" / "scenarios"):
        if (candidate / "seed").is_dir():
            return candidate
    return None


def describe_source(folder: Path) -> str:
    """Where a run's scenarios came from, as the summary says it: ``./scenarios``, or
    ``the bundled contract suite (PATH)`` for the harness's own from elsewhere."""
    folder = folder.resolve()
    here = Path.cwd().resolve()
    if folder.is_relative_to(here):
        rel = folder.relative_to(here).as_posix()
        return "./" if rel == "." else f"./{rel}"
    bundled = bundled_scenarios()
    if bundled is not None and folder.is_relative_to(bundled.resolve()):
        return f"the bundled contract suite ({folder})"
    return str(folder)


# PROVIDER_TIMEOUT_MS by target mode, unless --provider-timeout says otherwise. A
# `timeout:` answer costs the run one timeout, so it is as short as the mode allows:
# in-process the backend and the scripted provider share one event loop (no network
# between them), but a scripted gap (the race family's 15 ms) must stay in time when the
# loop stalls on a busy machine (at 50 ms, a load of 9 on 2 cores broke 2 gaps in 8000);
# --target-cmd crosses loopback HTTP between processes on a machine that may be busy;
# --target-url cannot set it: the running backend has its own (C-RUN-1 says 30000 by
# default; 1000 is what the harness's own commands start it with).
PROVIDER_TIMEOUT_DEFAULTS = {"reference": 80, "cmd": 250, "url": 1000}


@dataclass(frozen=True)
class RunConfig:
    target: str = "reference"
    mutants: frozenset[str] = field(default_factory=frozenset)
    variants: frozenset[str] = field(default_factory=frozenset)  # benign ones (variants.py)
    db: str = "auto"
    db_url: str | None = None
    db_image: str | None = None
    fixtures: Path = field(default_factory=_find_fixtures)
    jwt_secret: str = DEFAULT_JWT_SECRET
    # PROVIDER_TIMEOUT_MS of the backend (--provider-timeout); 0: the mode's default
    # (PROVIDER_TIMEOUT_DEFAULTS): short, so that a `timeout:` answer costs little
    provider_timeout_ms: int = 0
    request_timeout_s: float = 30.0
    strict_fields: bool = False  # --strict-fields: list the extra fields of answers as notes
    # black-box targets (--target-cmd / --target-url)
    target_cmd: str | None = None
    target_url: str | None = None
    provider_port: int = 0  # 0: a free port
    apply_schema: bool = True  # --no-schema: the backend migrates itself
    reset_db: bool = True  # --target-url: only with --reset-db (the backend's own database)
    start_timeout_s: float = 60.0  # for GET /api/health of --target-cmd
    reports: Path = Path("reports")  # logs (target.log) go there too
    keep_logs: bool = True  # --reports '': the backend's log goes to a folder removed after
    protocol: str = "contract"  # how the conversation-level steps speak (--protocol)
    profile: Profile | None = None  # the backend's profile (--profile, ./chat-harness.yaml)
    worker: str | None = None  # the pytest-xdist worker running this (its log: target-gwN.log)

    @property
    def profile_protocol(self) -> str:
        """The protocol the profile names (contract without a profile)."""
        return self.profile.protocol if self.profile is not None else "contract"

    @property
    def ready_path(self) -> str:
        """The route that answers once the backend can serve (C-RUN-2's, else the profile's)."""
        return self.profile.routes.ready if self.profile is not None else "/api/health"

    def __post_init__(self) -> None:
        if self.provider_timeout_ms <= 0:
            object.__setattr__(self, "provider_timeout_ms", PROVIDER_TIMEOUT_DEFAULTS[self.mode])

    @property
    def provider_timeout_given(self) -> int | None:
        """The provider timeout when it is not the mode's default (for the rerun line)."""
        default = PROVIDER_TIMEOUT_DEFAULTS[self.mode]
        return self.provider_timeout_ms if self.provider_timeout_ms != default else None

    @property
    def mode(self) -> str:
        """``reference`` (in-process), ``cmd`` or ``url``."""
        return "cmd" if self.target_cmd else "url" if self.target_url else "reference"

    @property
    def schema(self) -> Path:
        return self.fixtures / "schema.sql"

    @classmethod
    def from_options(
        cls, *, target: str | None = None, mutants: list[str] | None = None,
        variants: list[str] | None = None,
        db: str | None = None, db_url: str | None = None, db_image: str | None = None,
        fixtures: str | None = None, target_cmd: str | None = None,
        target_url: str | None = None, provider_port: int | None = None,
        no_schema: bool = False, reset_db: bool = False, jwt_secret: str | None = None,
        start_timeout_s: float | None = None, reports: str | None = None,
        step_timeout_s: float | None = None, strict_fields: bool = False,
        provider_timeout_ms: int | None = None,
        protocol: str | None = None, profile: str | None = "",
    ) -> RunConfig:
        url = db_url or os.environ.get("CHAT_HARNESS_DATABASE_URL") or None
        names = _names(mutants)
        if names:
            from harness.reference.mutants import MUTANTS

            unknown = sorted(names - set(MUTANTS))
            if unknown:
                raise ConfigError(
                    f"unknown mutant {', '.join(unknown)}",
                    hint="known mutants: " + ", ".join(sorted(MUTANTS)),
                )
        benign = _names(variants)
        if benign:
            from harness.reference.variants import VARIANTS

            unknown = sorted(benign - set(VARIANTS))
            if unknown:
                raise ConfigError(
                    f"unknown variant {', '.join(unknown)}",
                    hint="known variants: " + ", ".join(sorted(VARIANTS)),
                )
        if target not in (None, "reference"):
            raise ConfigError(f"unknown target {target!r}",
                              hint="use --target reference, --target-cmd CMD or --target-url URL")
        if target_cmd and target_url:
            raise ConfigError("--target-cmd and --target-url exclude each other",
                              hint="--target-cmd starts the backend; "
                              "--target-url uses a running one")
        if target_url:
            if not target_url.startswith(("http://", "https://")):
                raise ConfigError(f"--target-url must be an http(s) URL, got {target_url!r}",
                                  hint="e.g. --target-url http://127.0.0.1:3000")
            for option, chosen in (("--mutant", names), ("--variant", benign)):
                if chosen:
                    raise ConfigError(f"{option} needs a backend the harness starts",
                                      hint=f"{option[2:]}s are switched on in the reference "
                                      "backend: use --target-cmd 'python -m harness.reference' "
                                      "or no target")
        if provider_timeout_ms is not None and provider_timeout_ms <= 0:
            raise ConfigError(f"--provider-timeout must be a positive number of ms, got "
                              f"{provider_timeout_ms}", hint="e.g. --provider-timeout 200")
        picked = _profile(profile)
        if picked is not None and picked.start and not (target_cmd or target_url):
            target_cmd = picked.start
        protocol = protocol or (picked.protocol if picked is not None else "contract")
        if protocol != "contract" and not (target_cmd or target_url):
            raise ConfigError(f"--protocol {protocol} needs a backend that speaks it",
                              hint="the in-process reference speaks the contract only: give "
                              "--target-cmd CMD, --target-url URL, or a profile with 'start:'")
        if picked is not None and not picked.schema:
            no_schema = True
        if provider_port is not None and not 0 <= provider_port <= 65535:
            raise ConfigError(f"--provider-port must be 0..65535, got {provider_port}")
        return cls(
            target=("cmd" if target_cmd else "url" if target_url else target or "reference"),
            mutants=frozenset(names),
            variants=frozenset(benign),
            db=db or ("url" if url else os.environ.get("CHAT_HARNESS_DB", "auto")),
            db_url=url,
            db_image=db_image,
            fixtures=Path(fixtures) if fixtures else _find_fixtures(),
            target_cmd=target_cmd or None,
            target_url=target_url.rstrip("/") if target_url else None,
            provider_port=provider_port or 0,
            apply_schema=not no_schema,
            reset_db=not target_url or reset_db,
            jwt_secret=jwt_secret or os.environ.get("CHAT_HARNESS_JWT_SECRET")
            or DEFAULT_JWT_SECRET,
            start_timeout_s=start_timeout_s or 60.0,
            request_timeout_s=step_timeout_s or 30.0,
            strict_fields=strict_fields,
            provider_timeout_ms=provider_timeout_ms or 0,
            reports=Path(reports) if reports else Path("reports"),
            keep_logs=reports != "",
            protocol=protocol,
            profile=picked,
        )


def _profile(path: str | None) -> Profile | None:
    """The profile ``path`` names; ``None`` (``run`` without ``--profile``):
    ./chat-harness.yaml (or ./pyproject.toml's ``[tool.chat-harness]``) when there is one;
    ``""``: none (the commands without ``--profile``)."""
    from harness import profile

    if path == "":
        return None
    found = Path(path) if path else profile.find()
    return profile.load(found) if found is not None else None


def _names(items: list[str] | None) -> set[str]:
    """Names given as repeated options, each possibly comma-separated."""
    names: set[str] = set()
    for item in items or []:
        names.update(n.strip() for n in item.split(",") if n.strip())
    return names
