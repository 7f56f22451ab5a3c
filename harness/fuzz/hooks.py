"""What a generated request may carry: framing headers stay the HTTP client's.

schemathesis also generates headers the operation does not declare. One
named ``Content-Length`` or ``Transfer-Encoding`` with a generated value makes
the request malformed at the HTTP layer: the server (uvicorn here, a proxy in
front of staging) refuses it with its own plain-text 400 before the backend
sees it. That is a finding about the HTTP server, not about the chat API, so
such headers are dropped before every call. Importing this module registers
the hook (schemathesis keeps one global registry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import schemathesis

if TYPE_CHECKING:
    from schemathesis import Case, HookContext

FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection", "keep-alive",
                     "proxy-connection", "te", "trailer", "upgrade", "expect"})


@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """Drop generated framing headers (the client computes its own)."""
    if case.headers:
        for name in [n for n in case.headers if str(n).lower() in FRAMING]:
            del case.headers[name]
