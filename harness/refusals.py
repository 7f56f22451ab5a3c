"""Whether a backend refused a run: then nothing was tested, and the run says so.

``fuzz``, ``explore`` and ``load`` judge the answers they get. A backend that
refuses the run's tokens (a wrong ``--jwt-secret``) or has none of the routes
at that URL answers 401 or 404 to everything, and 401 and 404 are answers the
contract allows, so such a run could report "no issues" having tested nothing
but the front door. Each of them counts here what its requests got and fails
(exit code 3, like a backend that cannot be started) when:

- **auth**: more than half of the requests to operations of the contract sent
  with the run's own tokens were answered 401 or 403 (its tokens are valid
  ones: a correct backend accepts them; the odd tokens a run makes on purpose,
  and its probes of routes the contract does not have, are not counted);
- **routes**: every request (at least :data:`MIN_REQUESTS`) to an operation of
  the contract was answered 404, where the contract never answers 404.

Counting is safe from several threads (schemathesis' workers).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.errors import TargetRefused

if TYPE_CHECKING:
    from harness.contract.openapi import Operation

AUTH = (401, 403)
MIN_REQUESTS = 3  # an operation tried fewer times says too little to judge its route


@dataclass
class Tally:
    """What the requests of one run got back."""

    what: str  # the command, as the message names it: "fuzz", "explore", "load"
    auth_hint: str = "check --jwt-secret: it must be the backend's JWT_SECRET"
    route_hint: str = ("check the backend's address (--target-url, or what --target-cmd "
                       "serves): the chat API must be at its root (/api/chat, /api/health)")
    meant: int = 0  # requests sent with the run's own (valid) tokens
    refused: int = 0  # of them, answered 401 or 403
    routes: dict[str, Counter[int]] = field(default_factory=dict)  # "POST /api/chat" -> statuses
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, path: str, status: int, *, authorized: bool = True) -> None:
        """One answer: ``authorized`` when the request carried one of the run's tokens.
        Requests to routes the contract does not have (probes for 404 and 405) are
        not meant to be served, authorized or not: they count for neither rule."""
        route = f"{method.upper()} {path.split('?', 1)[0]}"
        if _operation(route) is None:
            return
        with self._lock:
            self.routes.setdefault(route, Counter())[status] += 1
            if authorized:
                self.meant += 1
                self.refused += status in AUTH

    def verdict(self) -> tuple[str, str] | None:
        """Why the backend refused the run, in one paragraph, and what to check; None
        if it did not."""
        if self.meant and self.refused * 2 > self.meant:
            return (f"{self.what} tested nothing: the backend refused {self.refused} of the "
                    f"{self.meant} requests sent with the run's own tokens with 401/403 "
                    "(the rule: more than half of those requests refused means the backend "
                    "does not accept the run's tokens, so every answer judged was its "
                    "refusal, not the chat API)", self.auth_hint)
        missing = [route for route, statuses in sorted(self.routes.items())
                   if set(statuses) == {404} and sum(statuses.values()) >= MIN_REQUESTS
                   and not _may_404(route)]
        if missing:
            return (f"{self.what} tested nothing at some routes: every request to "
                    f"{', '.join(missing)} was answered 404, an answer the contract never "
                    f"gives there (the rule: an operation of the contract that answers "
                    f"only 404 to at least {MIN_REQUESTS} requests is not there)", self.route_hint)
        return None

    def check(self) -> None:
        """Raise :class:`TargetRefused` if the backend refused the run."""
        found = self.verdict()
        if found is not None:
            raise TargetRefused(found[0], hint=found[1])


def _operation(route: str) -> Operation | None:
    from harness.contract.openapi import operation_for

    method, _, path = route.partition(" ")
    return operation_for(method, path)


def _may_404(route: str) -> bool:
    """Whether the contract lists 404 among the answers of ``route``'s operation."""
    operation = _operation(route)
    return operation is None or "404" in {str(code) for code in
                                          operation.spec.get("responses", {})}


__all__ = ["AUTH", "MIN_REQUESTS", "Tally"]
