"""The scenario language: what a scenario file may say, as typed models.

Validation is strict (``"429"`` is not a status, ``yes`` is not a message) and
forbids unknown keys, so a typo is an error with a did-you-mean, never a key
silently ignored. Models carry no line numbers; :mod:`harness.scenario.load`
maps every validation error back to ``file:line`` through the YAML nodes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.provider import Answer, ErrorAnswer, RawAnswer, Reply, Side
from harness.result import SWITCHABLE


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


class StreamError(_Strict):
    """A mid-stream error chunk: ``{"error": {"code", "message"}}``, finish_reason error."""

    after: int = Field(default=1, ge=0)  # text chunks sent before it
    code: int = Field(default=502, ge=100, le=599)
    message: str = "Provider error"


class ToolCall(_Strict):
    """A tool call the model makes (``reply`` may then be empty)."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class ProviderAnswer(_Strict):
    """One planned provider answer: ``reply:``, ``status:`` or ``raw:``."""

    reply: str | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    error: str | None = None
    retry_after: int | str | None = None
    raw: str | None = None
    disconnect: bool = False  # the connection drops (after `raw`'s bytes, if any)
    headers: dict[str, str] = Field(default_factory=dict)
    usage: dict[str, int] | None = None
    no_usage: bool = False
    id: str | None = None
    model: str | None = None
    for_model: str | None = None
    delay_ms: int = Field(default=0, ge=0, le=600_000)
    # true: the headers come only after the backend's PROVIDER_TIMEOUT_MS;
    # first_token: headers in time, the first token after it (streams)
    timeout: bool | Literal["first_token"] = False
    # streamed answers (the backend asked with "stream": true)
    chunk_chars: int = Field(default=12, ge=1)
    gap_ms: int = Field(default=0, ge=0, le=600_000)
    first_gap_ms: int | None = Field(default=None, ge=0, le=600_000)
    processing: int = Field(default=1, ge=0, le=100)
    cut_after: int | None = Field(default=None, ge=0)
    stream_error: StreamError | None = None
    done: bool = True
    tool_calls: list[ToolCall] = Field(default_factory=list)  # with reply (may be "")

    @model_validator(mode="after")
    def _one_kind(self) -> ProviderAnswer:
        kinds = [k for k in ("reply", "raw") if getattr(self, k) is not None]
        if self.status is not None and not kinds:
            kinds.append("status")
        if self.disconnect and not kinds:
            kinds.append("disconnect")
        if len(kinds) != 1:
            raise ValueError(
                "a provider answer needs exactly one of 'reply' (a success), "
                "'status' (an error), 'raw' (a body sent as is) or 'disconnect: true'"
            )
        if self.disconnect and self.reply is not None:
            raise ValueError("'disconnect' drops the connection; for a stream cut use cut_after")
        if self.reply is not None and self.status not in (None, 200):
            raise ValueError("'reply' is a 200 answer; use 'status' with 'error' for a failure")
        if self.tool_calls and self.reply is None:
            raise ValueError("'tool_calls' come with a 'reply' (its text, \"\" for none)")
        return self

    def to_answer(self, timeout_ms: int = 30_000) -> Answer:
        """The engine's answer; ``timeout: true`` waits past ``timeout_ms``."""
        late = timeout_ms + 300  # past the limit, by more than a loaded machine jitters
        delay = max(self.delay_ms, late) if self.timeout is True else self.delay_ms
        first_gap = self.first_gap_ms
        if self.timeout == "first_token":
            first_gap = max(first_gap or 0, late)
        if self.reply is not None:
            err = self.stream_error
            return Reply(
                content=self.reply, model=self.model, id=self.id, usage=self.usage,
                omit_usage=self.no_usage, delay_ms=delay, chunk_chars=self.chunk_chars,
                gap_ms=self.gap_ms, first_gap_ms=first_gap, processing=self.processing,
                cut_after=self.cut_after, error_after=err.after if err else None,
                error_code=err.code if err else 502,
                error_message=err.message if err else "Provider error", done=self.done,
                tool_calls=tuple(t.model_dump(exclude_none=True) for t in self.tool_calls),
            )
        if self.raw is not None or self.disconnect:
            return RawAnswer(
                status=self.status or 200, body=self.raw or "", headers=self.headers,
                delay_ms=delay, cut=self.disconnect,
            )
        assert self.status is not None
        return ErrorAnswer(
            status=self.status, message=self.error or "Provider error",
            retry_after=self.retry_after, delay_ms=delay,
        )


class SideMatch(_Strict):
    """Which provider calls a side rule answers (every criterion given must hold)."""

    model: str | None = None
    stream: bool | None = None  # a call without "stream": true counts as false
    contains: str | None = Field(default=None, min_length=1)  # in the call's JSON text


class SideAnswer(ProviderAnswer):
    """A side rule: the calls ``match`` names get this answer, every time, without taking
    the step's planned answers (e.g. the title request an AI SDK app makes)."""

    match: SideMatch = Field(default_factory=SideMatch)

    def to_side(self, timeout_ms: int = 30_000) -> Side:
        return Side(self.to_answer(timeout_ms), model=self.match.model,
                    stream=self.match.stream, contains=self.match.contains)


class ProviderExpect(_Strict):
    """What the backend must have sent the provider during the step."""

    calls: int | None = Field(default=None, ge=0)
    model: str | None = None  # of every call
    messages: list[dict[str, Any]] | None = None  # of the last call, exactly
    stream: bool | None = None  # of every call
    path: str | None = None  # of every call, e.g. /api/v1/chat/completions
    headers: dict[str, str] = Field(default_factory=dict)  # of every call (names any case)


HttpStatus = Annotated[int, Field(ge=100, le=599)]


class Expect(_Strict):
    """What a step's HTTP answer must look like."""

    status: HttpStatus | Literal["2xx", "4xx", "5xx"] | Annotated[
        list[HttpStatus], Field(min_length=1)] | None = None
    body: Any = None  # a partial match: listed keys must be there with these values
    # C-ERR-3: an error's text (its `error` or `details`) names this field
    names_field: str | None = Field(default=None, min_length=1)
    headers: dict[str, Any] = Field(default_factory=dict)  # a string or a matcher (!any, ...)
    provider: ProviderExpect | None = None
    rows: list[dict[str, Any]] | None = None  # db steps: exactly these rows (partial per row)
    row_count: int | None = Field(default=None, ge=0)  # db steps


class Token(_Strict):
    """A deliberately unusual token for the actor (C-AUTH-1 edge cases)."""

    expired: bool = False
    secret: str | None = None  # sign with another secret
    alg: Literal["HS256", "HS384", "HS512", "none"] = "HS256"
    sub: str | None = None  # another subject than the actor's UUID
    no_exp: bool = False
    raw: str | None = None  # send this exact string after "Bearer "


ProviderPlan = ProviderAnswer | Annotated[list[ProviderAnswer], Field(min_length=1)]


class _Step(_Strict):
    title: str | None = None
    actor: str = Field(default="alice", alias="as")
    token: Token | None = None
    provider: ProviderPlan | None = None
    # side rules for this step's provider calls (before the scenario's own)
    side: list[SideAnswer] = Field(default_factory=list)
    expect: Expect | None = None
    capture: dict[str, str] = Field(default_factory=dict)

    def answers(self) -> list[ProviderAnswer]:
        if self.provider is None:
            return []
        return list(self.provider) if isinstance(self.provider, list) else [self.provider]


class ChatStep(_Step):
    """Play the chat front end: send a message, pair and sync the answer."""

    kind: Literal["chat"] = "chat"
    chat: str
    model: str | None = None
    current_message_id: bool | None = None
    at: str | None = None  # the message's timestamp (ISO-8601); default: the scenario clock
    # store the outcome with POST /api/chat/messages, as the app does; false holds the
    # batch back (a later ``resync`` posts it, e.g. twice at once in a ``parallel:``)
    sync: bool = True


class StreamStep(ChatStep):
    """Like ``chat``, through ``POST /api/chat/stream``."""

    kind: Literal["stream"] = "stream"  # type: ignore[assignment]
    chat: str = ""
    stream: str


class RetryStep(_Step):
    """Resend a failed message under its own id (C-MSG-5)."""

    kind: Literal["retry"] = "retry"
    retry: int | Literal["last"] = "last"  # the 1-based step that failed, or the last failure
    model: str | None = None
    streaming: bool = False
    current_message_id: bool | None = None


class DbStep(_Step):
    """Query the harness's PostgreSQL; ``expect.rows`` / ``row_count`` judge the rows."""

    kind: Literal["db"] = "db"
    db: str
    params: list[Any] = Field(default_factory=list)


class ResyncStep(_Step):
    """Post the client's last sync again (C-MSG-2)."""

    kind: Literal["resync"] = "resync"
    resync: bool | None = None


class HttpStep(_Step):
    """Send one raw request, e.g. a bug report's exact payload."""

    kind: Literal["http"] = "http"
    http: str
    body: Any = None
    body_file: str | None = None
    raw_body: str | None = None  # sent as is (malformed JSON, C-ERR-3)
    pad_to: int | None = Field(default=None, ge=1, le=64 * 1024 * 1024)  # bytes, with spaces
    query: dict[str, str | int | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: bool = True

    @model_validator(mode="after")
    def _one_body(self) -> HttpStep:
        given = [k for k in ("body", "body_file", "raw_body") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of 'body', 'body_file' and 'raw_body', not {given}")
        return self


MAX_ROUNDS = 1000  # a bound, so that a typo cannot hammer a backend for an hour


class ParallelStep(_Step):
    """Several steps sent at once, over concurrent connections (the races of issue 14).

    ``rounds`` repeats the group, each round with fresh ``${fresh.NAME}`` ids;
    ``before`` runs in order at the start of every round (e.g. a chat whose sync
    is held back); ``barrier`` releases every request of a round at once, after
    each has its connection open.
    """

    kind: Literal["parallel"] = "parallel"
    parallel: list[Any]
    rounds: int = Field(default=1, ge=1, le=MAX_ROUNDS)
    barrier: bool = False
    before: list[Any] = Field(default_factory=list)
    parsed: tuple[Any, ...] = ()  # the validated steps (set by the loader)
    before_parsed: tuple[Any, ...] = Field(default=(), exclude=True)
    lines: tuple[int, ...] = Field(default=(), exclude=True)  # the line of each step of the group


Step = ChatStep | StreamStep | RetryStep | ResyncStep | HttpStep | DbStep | ParallelStep

# the table of kinds (model, title, handler, ...): harness.scenario.steps
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

CHECKS = SWITCHABLE  # the checks ``checks:`` may switch off (harness.result.Check lists all)


Protocol = Literal["contract", "ai-sdk"]  # harness.scenario.protocols.NAMES


class ClientOptions(_Strict):
    """How the simulated front end behaves."""

    current_message_id: bool = True  # older clients do not send it


class Header(_Strict):
    """Everything of a scenario but its steps (validated first)."""

    name: str | None = None
    why: str | None = None  # one line: what a backend gets wrong that this catches
    covers: list[str] = Field(default_factory=list)
    model: str | None = None
    session: str | None = None
    start_at: str = "2025-08-12T14:34:08.861Z"
    client: ClientOptions = Field(default_factory=ClientOptions)
    matrix: dict[Literal["current_message_id"], list[Any]] = Field(default_factory=dict)
    checks: dict[Literal[CHECKS], bool] = Field(default_factory=dict)  # type: ignore[valid-type]
    # the protocols the scenario speaks (harness.scenario.protocols); a run of another
    # protocol skips it. Default: contract
    protocol: Protocol | Annotated[list[Protocol], Field(min_length=1)] = "contract"
    # side rules for every step's provider calls (a title request, ...): SideAnswer
    side: list[SideAnswer] = Field(default_factory=list)
    steps: list[Any]

    @property
    def protocols(self) -> tuple[str, ...]:
        return (self.protocol,) if isinstance(self.protocol, str) else tuple(self.protocol)
