"""The table of step kinds: one module per kind, each declaring ``KINDS``.

A module here declares its kinds once, as :class:`StepKind` entries (name,
model, title, whether it runs inside ``parallel:``, the ids it pins, handler);
the loader, the runner and the reporters read everything about a kind from
this table. Adding a kind is adding a module here (found by its name, listed
after the built-in ones) and its tests; a plugin adds kinds with the hook
``pytest_chat_harness_step_kinds`` (:func:`register`).
"""

from __future__ import annotations

import importlib
import pkgutil

from harness.errors import InvalidInput
from harness.scenario.steps.kind import TABLE, Handler, StepBase, StepKind, capture, kind_of

# the built-in modules, in the order error messages list their kinds
_ORDER = ("chat", "retry", "resync", "http", "db", "parallel")


def _discover() -> None:
    found = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in ("kind",)]
    for name in sorted(found, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER),
                                             n)):
        module = importlib.import_module(f"{__name__}.{name}")
        for kind in getattr(module, "KINDS", ()):
            register(kind)


def register(kind: StepKind) -> None:
    """Add a kind to the table (a plugin's, through ``pytest_chat_harness_step_kinds``)."""
    if not isinstance(kind, StepKind):
        raise InvalidInput(f"a step kind must be a StepKind, got {kind!r}")
    known = TABLE.get(kind.name)
    if known is not None and known != kind:
        raise InvalidInput(f"a step kind {kind.name!r} exists already")
    TABLE[kind.name] = kind


def unregister(name: str) -> None:
    """Remove a kind a plugin added (the built-in ones stay)."""
    module = TABLE[name].handler.__module__ if name in TABLE else ""
    if not module.startswith(f"{__name__}."):
        TABLE.pop(name, None)


def names() -> list[str]:
    """Every kind's name, in the table's order (for messages)."""
    return list(TABLE)


_discover()
KINDS = TABLE

__all__ = ["KINDS", "Handler", "StepBase", "StepKind", "capture", "kind_of", "names",
           "register", "unregister"]
