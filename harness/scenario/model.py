"""The scenario language: what a scenario file may say, as typed models.

Validation is strict (``"429"`` is not a status, ``yes`` is not a message) and
forbids unknown keys, so a typo is an error with a did-you-mean, never a key
silently ignored. Models carry no line numbers; :mod:`harness.scenario.load`
maps every validation error back to ``file:line`` through the YAML nodes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.provider import Answer, ErrorAnswer, RawAnswer, Reply


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


class ProviderAnswer(_Strict):
    """One planned provider answer: ``reply:``, ``status:`` or ``raw:``."""

    reply: str | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    error: str | None = None
    retry_after: int | str | None = None
    raw: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    usage: dict[str, int] | None = None
    no_usage: bool = False
    id: str | None = None
    model: str | None = None
    for_model: str | None = None
    delay_ms: int = Field(default=0, ge=0, le=600_000)

    @model_validator(mode="after")
    def _one_kind(self) -> ProviderAnswer:
        kinds = [k for k in ("reply", "raw") if getattr(self, k) is not None]
        if self.status is not None and not kinds:
            kinds.append("status")
        if len(kinds) != 1:
            raise ValueError(
                "a provider answer needs exactly one of 'reply' (a success), "
                "'status' (an error) or 'raw' (a body sent as is)"
            )
        if self.reply is not None and self.status not in (None, 200):
            raise ValueError("'reply' is a 200 answer; use 'status' with 'error' for a failure")
        return self

    def to_answer(self) -> Answer:
        if self.reply is not None:
            return Reply(
                content=self.reply, model=self.model, id=self.id, usage=self.usage,
                omit_usage=self.no_usage, delay_ms=self.delay_ms,
            )
        if self.raw is not None:
            return RawAnswer(
                status=self.status or 200, body=self.raw, headers=self.headers,
                delay_ms=self.delay_ms,
            )
        assert self.status is not None
        return ErrorAnswer(
            status=self.status, message=self.error or "Provider error",
            retry_after=self.retry_after, delay_ms=self.delay_ms,
        )


class Expect(_Strict):
    """What a step's HTTP answer must look like."""

    status: int | Literal["2xx", "4xx", "5xx"] | list[int] | None = None
    body: Any = None  # a partial match: listed keys must be there with these values
    headers: dict[str, str] = Field(default_factory=dict)


ProviderPlan = ProviderAnswer | list[ProviderAnswer]


class _Step(_Strict):
    title: str | None = None
    actor: str = Field(default="alice", alias="as")
    provider: ProviderPlan | None = None
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
    query: dict[str, str | int | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: bool = True

    @model_validator(mode="after")
    def _one_body(self) -> HttpStep:
        if self.body is not None and self.body_file is not None:
            raise ValueError("give either 'body' or 'body_file', not both")
        return self


Step = ChatStep | ResyncStep | HttpStep

STEP_KINDS: dict[str, type[_Step]] = {"chat": ChatStep, "resync": ResyncStep, "http": HttpStep}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

CHECKS = ("pairing", "context", "order", "lost", "idempotent", "provider_script")


class ClientOptions(_Strict):
    """How the simulated front end behaves."""

    current_message_id: bool = True  # older clients do not send it


class Header(_Strict):
    """Everything of a scenario but its steps (validated first)."""

    name: str | None = None
    description: str | None = None
    covers: list[str] = Field(default_factory=list)
    model: str | None = None
    session: str | None = None
    start_at: str = "2025-08-12T14:34:08.861Z"
    client: ClientOptions = Field(default_factory=ClientOptions)
    matrix: dict[Literal["current_message_id"], list[Any]] = Field(default_factory=dict)
    checks: dict[Literal[CHECKS], bool] = Field(default_factory=dict)  # type: ignore[valid-type]
    steps: list[Any]
