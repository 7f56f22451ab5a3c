"""The hooks of a fuzz run: what a generated request may carry, and what it got back.

Framing headers stay the HTTP client's:
schemathesis also generates headers the operation does not declare. One
named ``Content-Length`` or ``Transfer-Encoding`` with a generated value makes
the request malformed at the HTTP layer: the server (uvicorn here, a proxy in
front of staging) refuses it with its own plain-text 400 before the backend
sees it. That is a finding about the HTTP server, not about the chat API, so
such headers are dropped before every call.

Every answer is counted (:func:`counting`): a backend that refuses the run's
tokens answers 401 to everything, which the schema allows, so the run must
know it was refused (:mod:`harness.refusals`) rather than report no issues.

Importing this module registers the hooks (schemathesis keeps one global registry).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import schemathesis

if TYPE_CHECKING:
    from schemathesis import Case, HookContext
    from schemathesis.core.transport import Response

    from harness.refusals import Tally

# the run being counted: its tally and the Authorization values of its own users
_COUNTING: dict[str, Any] = {"tally": None, "tokens": frozenset()}

FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection", "keep-alive",
                     "proxy-connection", "te", "trailer", "upgrade", "expect"})


@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """Drop generated framing headers (the client computes its own)."""
    if case.headers:
        for name in [n for n in case.headers if str(n).lower() in FRAMING]:
            del case.headers[name]


@contextlib.contextmanager
def counting(tally: Tally, authorizations: frozenset[str]) -> Iterator[Tally]:
    """Count every answer of the run into ``tally`` while the block runs; a request
    counts as meant to be authorized when it carries one of ``authorizations``."""
    _COUNTING.update(tally=tally, tokens=authorizations)
    try:
        yield tally
    finally:
        _COUNTING.update(tally=None, tokens=frozenset())


@schemathesis.hook
def after_call(context: HookContext, case: Case, response: Response) -> None:
    """Count the answer (see :func:`counting`)."""
    tally = _COUNTING["tally"]
    if tally is None:
        return
    sent = response.request.headers.get("Authorization")
    tally.add(case.method, case.operation.path, response.status_code,
              authorized=sent in _COUNTING["tokens"])
