"""The scenario language: what a scenario file may say, as typed models.

Validation is strict (``"429"`` is not a status, ``yes`` is not a message) and
forbids unknown keys, so a typo is an error with a did-you-mean, never a key
silently ignored. Models carry no line numbers; :mod:`harness.scenario.load`
maps every validation error back to ``file:line`` through the YAML nodes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.provider import Answer, ErrorAnswer, RawAnswer, Reply
from harness.result import SWITCHABLE


class _Strict(BaseModel):
    # a field's docstring is its description in the JSON Schema (chat-harness schema)
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True,
                              use_attribute_docstrings=True)


class StreamError(_Strict):
    """A mid-stream error chunk: ``{"error": {"code", "message"}}``, finish_reason error."""

    after: int = Field(default=1, ge=0)
    """Text chunks sent before the error chunk."""
    code: int = Field(default=502, ge=100, le=599)
    """The error chunk's code."""
    message: str = "Provider error"
    """The error chunk's message."""


class ProviderAnswer(_Strict):
    """One planned provider answer: ``reply:``, ``status:`` or ``raw:``."""

    reply: str | None = Field(default=None, examples=["Amazon Bedrock is a managed service."])
    """A success (200): the completion's text (streamed when the backend asks to stream)."""
    status: int | None = Field(default=None, ge=100, le=599, examples=[429, 503])
    """An error answer with this HTTP status (with ``raw``: the status of that body)."""
    error: str | None = Field(default=None, examples=["rate-limited upstream"])
    """The error answer's message."""
    retry_after: int | str | None = Field(default=None, examples=[60, "${http_date.90}"])
    """The error answer's ``Retry-After``: seconds, or an HTTP date."""
    raw: str | None = Field(default=None, examples=['{"choices": []}'])
    """A body sent as is (malformed answers); status 200 unless ``status`` says otherwise."""
    disconnect: bool = False
    """The connection drops (after ``raw``'s bytes, if any)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers of a ``raw`` answer."""
    usage: dict[str, int] | None = Field(
        default=None, examples=[{"prompt_tokens": 12, "completion_tokens": 30,
                                 "total_tokens": 42}])
    """The reply's ``usage`` (default: counted from the texts)."""
    no_usage: bool = False
    """The reply carries no ``usage`` at all."""
    id: str | None = Field(default=None, examples=["gen-1755009250-abc"])
    """The completion id of the reply."""
    model: str | None = Field(default=None, examples=["google/gemini-2.5-flash-lite"])
    """The model the reply says answered (default: the one asked for)."""
    for_model: str | None = Field(default=None, examples=["google/gemini-2.0-flash-exp:free"])
    """Route this answer to calls for this model only (a model the step asks for)."""
    delay_ms: int = Field(default=0, ge=0, le=600_000)
    """Wait this long before answering."""
    timeout: bool | Literal["first_token"] = False
    """true: the headers come only after the backend's PROVIDER_TIMEOUT_MS; first_token:
    the headers in time, the first token after it (streams)."""
    chunk_chars: int = Field(default=12, ge=1)
    """Streams: characters per SSE chunk."""
    gap_ms: int = Field(default=0, ge=0, le=600_000)
    """Streams: the pause between chunks."""
    first_gap_ms: int | None = Field(default=None, ge=0, le=600_000)
    """Streams: the pause before the first chunk (default: ``gap_ms``)."""
    processing: int = Field(default=1, ge=0, le=100)
    """Streams: ``: OPENROUTER PROCESSING`` comment lines sent first."""
    cut_after: int | None = Field(default=None, ge=0)
    """Streams: drop the connection after this many text chunks."""
    stream_error: StreamError | None = None
    """Streams: a mid-stream error chunk."""
    done: bool = True
    """Streams: end with ``data: [DONE]``."""

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


class ProviderExpect(_Strict):
    """What the backend must have sent the provider during the step."""

    calls: int | None = Field(default=None, ge=0, examples=[1, 3])
    """How many provider calls the step made."""
    model: str | None = Field(default=None, examples=["google/gemini-2.5-flash-lite"])
    """The model of every call."""
    messages: list[dict[str, Any]] | None = Field(
        default=None, examples=[[{"role": "user", "content": "hello"}]])
    """The messages of the last call, exactly."""
    stream: bool | None = None
    """Whether every call asked to stream."""
    path: str | None = Field(default=None, examples=["/api/v1/chat/completions"])
    """The path of every call."""
    headers: dict[str, str] = Field(default_factory=dict,
                                    examples=[{"Authorization": "Bearer ${provider_api_key}"}])
    """Headers of every call (names in any case)."""


HttpStatus = Annotated[int, Field(ge=100, le=599)]


class Expect(_Strict):
    """What a step's HTTP answer must look like."""

    status: HttpStatus | Literal["2xx", "4xx", "5xx"] | Annotated[
        list[HttpStatus], Field(min_length=1)] | None = Field(
            default=None, examples=[201, "2xx", [200, 409]])
    """The answer's status: a number, a list of numbers, or 2xx / 4xx / 5xx."""
    body: Any = Field(default=None, examples=[{"code": "too_many_requests", "retryAfter": 60}])
    """A partial match: the listed keys must be there with these values (matchers such as
    ``!any``, ``!re PATTERN``, ``!instant TS`` allowed)."""
    names_field: str | None = Field(default=None, min_length=1, examples=["sessionId"])
    """C-ERR-3: the error's text (its ``error`` or ``details``) names this field."""
    headers: dict[str, Any] = Field(default_factory=dict, examples=[{"retry-after": "60"}])
    """Answer headers: a string or a matcher (``!any``, ...) each."""
    provider: ProviderExpect | None = None
    """What the backend sent the provider during the step."""
    rows: list[dict[str, Any]] | None = Field(default=None, examples=[[{"role": "user"}]])
    """db steps: exactly these rows, in order (listed keys only)."""
    row_count: int | None = Field(default=None, ge=0, examples=[3])
    """db steps: the number of rows."""


class Token(_Strict):
    """A deliberately unusual token for the actor (C-AUTH-1 edge cases)."""

    expired: bool = False
    """A token whose ``exp`` has passed."""
    secret: str | None = Field(default=None, examples=["other"])
    """Sign with another secret."""
    alg: Literal["HS256", "HS384", "HS512", "none"] = "HS256"
    """The signing algorithm."""
    sub: str | None = Field(default=None, examples=["not-a-uuid"])
    """Another subject than the actor's UUID."""
    no_exp: bool = False
    """A token without ``exp``."""
    raw: str | None = Field(default=None, examples=["not.a.jwt"])
    """Send this exact text after ``Bearer ``."""


ProviderPlan = ProviderAnswer | Annotated[list[ProviderAnswer], Field(min_length=1)]


class _Step(_Strict):
    title: str | None = Field(default=None, examples=["switch to a paid model and resend"])
    """What the step does, for reports (default: made from the step)."""
    actor: str = Field(default="alice", alias="as", examples=["bob"])
    """The user the step acts as: each actor is its own user with its own JWT."""
    token: Token | None = None
    """An unusual token for this request (C-AUTH-1 edge cases)."""
    provider: ProviderPlan | None = None
    """The provider's answer to the step's call, or a list of answers (retries)."""
    expect: Expect | None = None
    """What the step's HTTP answer must look like."""
    capture: dict[str, str] = Field(default_factory=dict,
                                    examples=[{"request_id": "data.request_id"}])
    """Variables for later steps (``${name}``): a path into the answer; ``message.`` and
    ``request.`` read what the client sent."""

    def answers(self) -> list[ProviderAnswer]:
        if self.provider is None:
            return []
        return list(self.provider) if isinstance(self.provider, list) else [self.provider]


class ChatStep(_Step):
    """Play the chat front end: send a message, pair and sync the answer.

    Plays a correct chat front end, like the app in the seed: makes a user message
    (``msg_<ms>_<rand>``, timestamp from a deterministic scenario clock), posts
    ``POST /api/chat`` with the whole local history (failed messages included) and
    ``current_message_id`` (switch off with ``current_message_id: false``, on the step or
    under ``client:``). On success it pairs the answer with the returned ``request_id`` and
    syncs the pair with ``POST /api/chat/messages``; on failure it flags the message
    ``error: true`` and syncs it alone. Needs a ``model:``, on the step or the scenario.
    """

    kind: Literal["chat"] = "chat"
    chat: str = Field(examples=["what is amazon bedrock?"])
    """The user's message, sent with ``POST /api/chat``."""
    model: str | None = Field(default=None, examples=["google/gemini-2.5-flash-lite"])
    """The model asked for (default: the scenario's ``model``)."""
    current_message_id: bool | None = None
    """Send ``current_message_id`` (default: the scenario's ``client`` setting)."""
    at: str | None = Field(default=None, examples=["2025-08-12T14:35:45.281Z"])
    """The message's timestamp (ISO-8601); the scenario clock goes on from there."""
    sync: bool = True
    """Store the outcome with ``POST /api/chat/messages``, as the app does; false holds the
    batch back (a later ``resync`` posts it)."""


class StreamStep(ChatStep):
    """Like ``chat``, through ``POST /api/chat/stream``.

    The text before the final line must equal ``__FINAL_METADATA__.response``; a
    ``__STREAM_ERROR__`` ending counts as a failure.
    """

    kind: Literal["stream"] = "stream"  # type: ignore[assignment]
    chat: str = ""
    stream: str = Field(examples=["tell me a story"])
    """The user's message, sent with ``POST /api/chat/stream``."""


class RetryStep(_Step):
    """Resend a failed message under its own id (C-MSG-5).

    ``retry: N`` resends the failed message of step N (1-based), ``retry: last`` the last
    failed one; ``streaming: true`` resends through the stream route. The step it resends
    must be one whose provider script fails.
    """

    kind: Literal["retry"] = "retry"
    retry: int | Literal["last"] = Field(default="last", examples=["last", 2])
    """The 1-based step whose message failed, or ``last``: the last failed message."""
    model: str | None = Field(default=None, examples=["google/gemini-2.5-flash-lite"])
    """The model asked for (default: the failed message's)."""
    streaming: bool = False
    """Resend through ``POST /api/chat/stream``."""
    current_message_id: bool | None = None
    """Send ``current_message_id`` (default: the scenario's ``client`` setting)."""


class DbStep(_Step):
    """Query the harness's PostgreSQL; ``expect.rows`` / ``row_count`` judge the rows.

    Rows are matched in order, listed keys only. Skipped with the reason where the harness
    has no database access.
    """

    kind: Literal["db"] = "db"
    db: str = Field(examples=["SELECT role, content FROM chat_messages WHERE session_id = %s"])
    """The SQL query (psycopg placeholders ``%s``)."""
    params: list[Any] = Field(default_factory=list, examples=[["${session_id}"]])
    """The query's parameters."""


class ResyncStep(_Step):
    """Post the client's last sync again (C-MSG-2).

    Or the batch a ``sync: false`` chat held back (needs an earlier sync).
    """

    kind: Literal["resync"] = "resync"
    resync: bool | None = None
    """Nothing to give: write ``- resync`` (or ``resync: true``)."""


class HttpStep(_Step):
    """Send one raw request, e.g. a bug report's exact payload.

    ``body`` (inline), ``body_file``, or ``raw_body`` (bytes sent as is: malformed JSON);
    ``pad_to: N`` pads the body with spaces to N bytes (the 10 MiB limit); ``query``,
    ``headers``, ``auth: false`` to send no token.
    """

    kind: Literal["http"] = "http"
    http: str = Field(examples=["POST /api/chat/messages", "GET /api/chat/sessions"])
    """``METHOD /path`` (GET, POST, PUT, PATCH, DELETE)."""
    body: Any = Field(default=None, examples=[{"sessionId": "${session_id}", "messages": []}])
    """A JSON body, written inline."""
    body_file: str | None = Field(default=None, examples=["seed/04-sync-pair.request.json"])
    """A JSON body from a file (under fixtures/, or next to the scenario)."""
    raw_body: str | None = Field(default=None, examples=['{"messages": ['])
    """Bytes sent as is (malformed JSON, C-ERR-3)."""
    pad_to: int | None = Field(default=None, ge=1, le=64 * 1024 * 1024, examples=[10485761])
    """Pad the body with spaces to this many bytes (size limits)."""
    query: dict[str, str | int | bool] = Field(default_factory=dict,
                                               examples=[{"sessionId": "${session_id}"}])
    """Query parameters."""
    headers: dict[str, str] = Field(default_factory=dict,
                                    examples=[{"x-request-id": "req-1"}])
    """Request headers."""
    auth: bool = True
    """Send the actor's token (false: no ``Authorization`` header)."""

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
    parallel: list[Any] = Field(examples=[["resync", "resync"]])
    """Two or more steps (any kind but ``parallel``), sent at once."""
    rounds: int = Field(default=1, ge=1, le=MAX_ROUNDS, examples=[12])
    """Repeat the group, each round with fresh ``${fresh.NAME}`` ids."""
    barrier: bool = False
    """Release every request of a round at once, each with its connection open."""
    before: list[Any] = Field(default_factory=list)
    """Steps run in order at the start of every round."""
    parsed: tuple[Any, ...] = ()  # the validated steps (set by the loader)
    before_parsed: tuple[Any, ...] = Field(default=(), exclude=True)
    lines: tuple[int, ...] = Field(default=(), exclude=True)  # the line of each step of the group


Step = ChatStep | StreamStep | RetryStep | ResyncStep | HttpStep | DbStep | ParallelStep

# the table of kinds (model, title, handler, ...): harness.scenario.steps
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

CHECKS = SWITCHABLE  # the checks ``checks:`` may switch off (harness.result.Check lists all)


class ClientOptions(_Strict):
    """How the simulated front end behaves."""

    current_message_id: bool = True
    """Send ``current_message_id`` with each chat (older clients do not)."""


class Header(_Strict):
    """Everything of a scenario but its steps (validated first)."""

    name: str | None = Field(default=None, examples=["429-switch-model-resend"])
    """The scenario's name (default: the file's name)."""
    why: str | None = Field(default=None, examples=[
        "a 429, a model switch and a resend of the same text must not mispair or lose anything"])
    """One line: what a backend gets wrong that this scenario catches."""
    covers: list[str] = Field(default_factory=list, examples=[["C-CHAT-2", "C-MSG-2"]])
    """The contract clauses this scenario checks (``chat-harness coverage``)."""
    model: str | None = Field(default=None, examples=["google/gemini-2.0-flash-exp:free"])
    """The default model of chat steps."""
    session: str | None = Field(default=None, examples=["conv_1755009248860_gy5e5xlyt"])
    """A fixed session id (default: a new one each run); letters, digits, _ - . :"""
    start_at: str = Field(default="2025-08-12T14:34:08.861Z",
                          examples=["2025-08-12T14:34:08.861Z"])
    """The scenario clock's start (ISO-8601): the first message's timestamp."""
    client: ClientOptions = Field(default_factory=ClientOptions)
    """How the simulated front end behaves."""
    matrix: dict[Literal["current_message_id"], list[Any]] = Field(
        default_factory=dict, examples=[{"current_message_id": [True, False]}])
    """Run the scenario once per combination of these client settings."""
    checks: dict[Literal[CHECKS], bool] = Field(  # type: ignore[valid-type]
        default_factory=dict, examples=[{"idempotent": False}])
    """Switch built-in checks off for this scenario."""
    steps: list[Any]
    """The steps, in order: each starts with its kind (chat, stream, retry, resync, http, db,
    parallel)."""
