"""A backend profile: how the harness starts, logs into and reads a user's own app.

One file, ``chat-harness.yaml`` (or ``[tool.chat-harness]`` in ``pyproject.toml``),
names the protocol the backend speaks, the command that starts it, the
environment names it reads (mapped to the values the harness provides), how a
test user logs in, the route paths, and the SQL that reads a chat's stored
messages. ``chat-harness init`` writes a commented one (:data:`TEMPLATE`);
docs/protocols.md is the reference.

Values in ``env`` may use ``{port}``, ``{database_url}``, ``{provider_url}``
(the mock provider's OpenAI-compatible base URL, ``.../api/v1``),
``{provider_api_key}``, ``{jwt_secret}`` and ``{provider_timeout_ms}``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

FILE_NAMES = ("chat-harness.yaml", "chat-harness.yml")
PLACEHOLDERS = ("port", "database_url", "provider_url", "provider_api_key", "jwt_secret",
                "provider_timeout_ms")
PROTOCOLS = ("contract", "ai-sdk")  # harness.scenario.protocols.NAMES, one layer up
AISDK_MESSAGES_SQL = ('SELECT id, role, parts, "createdAt" FROM "Message_v2" '
                      'WHERE "chatId" = %(chat_id)s ORDER BY "createdAt", id')


@dataclass(frozen=True)
class Login:
    """How a test user gets in: ``bearer`` (a JWT signed with the secret, ``sub`` = the
    user's id) or ``cookie`` (``route`` answers with a session cookie; one per actor)."""

    kind: str = "bearer"
    route: str = "/api/auth/guest"
    method: str = "GET"


@dataclass(frozen=True)
class Routes:
    chat: str = "/api/chat"  # POST a user turn
    history: str = "/api/history"  # GET the user's chats
    ready: str = "/api/health"  # GET answers (2xx or 3xx) once the backend can serve


@dataclass(frozen=True)
class Profile:
    protocol: str = "contract"
    start: str | None = None  # the command that starts the backend (through sh)
    env: dict[str, str] = field(default_factory=dict)  # name -> value with placeholders
    login: Login = field(default_factory=Login)
    routes: Routes = field(default_factory=Routes)
    messages_sql: str = AISDK_MESSAGES_SQL  # %(chat_id)s: the chat's id
    reset_sql: str | None = None  # empties the backend's tables between scenarios
    schema: bool = False  # apply the contract's fixtures/schema.sql (a contract backend)
    # the model every turn sends (selectedChatModel), for an app that accepts only its own
    # model ids; None: the scenario's
    model: str | None = None
    source: str = ""  # the file it came from

    def environment(self, values: dict[str, str]) -> dict[str, str]:
        """``env`` with its placeholders filled from ``values``."""
        out = {}
        for name, template in self.env.items():
            try:
                out[name] = template.format(**values)
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"{self.source}: env.{name}: cannot fill {template!r} ({exc})",
                    hint="placeholders: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                    + " (write {{ and }} for braces)") from None
        return out


_TOP = {"protocol", "start", "env", "login", "routes", "messages_sql", "reset_sql", "schema",
        "model"}
_LOGIN = {"kind", "route", "method"}
_ROUTES = {"chat", "history", "ready"}


def find(folder: Path | None = None) -> Path | None:
    """The profile of ``folder`` (default: the current one): chat-harness.yaml, else a
    pyproject.toml with ``[tool.chat-harness]``; None if there is neither."""
    here = folder or Path.cwd()
    for name in FILE_NAMES:
        if (here / name).is_file():
            return here / name
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        if isinstance(data.get("tool"), dict) and "chat-harness" in data["tool"]:
            return pyproject
    return None


def load(path: str | Path) -> Profile:
    """The profile in ``path`` (YAML, or a pyproject.toml's ``[tool.chat-harness]``)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the profile {file}: {exc.strerror or exc}",
                          hint="give --profile a chat-harness.yaml (chat-harness init "
                          "writes one)") from None
    lines: dict[str, int] = {}
    if file.name == "pyproject.toml":
        try:
            data = tomllib.loads(text).get("tool", {}).get("chat-harness")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        if data is None:
            raise ConfigError(f"{file} has no [tool.chat-harness] table",
                              hint="add one, or write a chat-harness.yaml (chat-harness init)")
    else:
        try:
            data = yaml.safe_load(text)
            lines = _lines(yaml.compose(text))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    return parse(data, str(file), lines)


def parse(data: Any, source: str, lines: dict[str, int] | None = None) -> Profile:
    """A :class:`Profile` from a mapping, every mistake named (file, line, key, hint)."""
    lines = lines or {}

    def bad(key: str, expected: str, got: Any, hint: str | None = None) -> ConfigError:
        line = lines.get(key)
        where = f"{source}:{line}" if line else source
        return ConfigError(f"{where}: {key}: expected {expected}, got {got!r}", hint=hint)

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise bad("(top)", "a mapping of settings", data)
    for key in data:
        if key not in _TOP:
            raise bad(str(key), "a known setting", key, hint="known settings: "
                      + ", ".join(sorted(_TOP)))

    def text(key: str, value: Any, *, path: bool = False) -> str:
        if not isinstance(value, str) or not value.strip():
            raise bad(key, "a non-empty string", value)
        if path and not value.startswith("/"):
            raise bad(key, "a path starting with /", value, hint="e.g. /api/chat")
        return value

    protocol = data.get("protocol", "contract")
    if protocol not in PROTOCOLS:
        raise bad("protocol", "one of " + ", ".join(PROTOCOLS), protocol)
    env = data.get("env") or {}
    if not isinstance(env, dict):
        raise bad("env", "a mapping NAME: value", env,
                  hint='e.g. env: {POSTGRES_URL: "{database_url}"}')
    for name, value in env.items():
        if not isinstance(value, str | int):
            raise bad(f"env.{name}", "a string (placeholders allowed)", value)
    login_data = data.get("login") or {}
    if isinstance(login_data, str):
        login_data = {"kind": login_data}
    if not isinstance(login_data, dict):
        raise bad("login", "bearer, cookie, or a mapping {kind, route, method}", login_data)
    for key in login_data:
        if key not in _LOGIN:
            raise bad(f"login.{key}", "one of " + ", ".join(sorted(_LOGIN)), key)
    kind = login_data.get("kind", "bearer")
    if kind not in ("bearer", "cookie"):
        raise bad("login.kind", "bearer or cookie", kind)
    method = str(login_data.get("method", "GET")).upper()
    if method not in ("GET", "POST"):
        raise bad("login.method", "GET or POST", login_data.get("method"))
    login = Login(kind=kind, method=method,
                  route=text("login.route", login_data.get("route", Login.route), path=True))
    routes_data = data.get("routes") or {}
    if not isinstance(routes_data, dict):
        raise bad("routes", "a mapping {chat, history, ready}", routes_data)
    for key in routes_data:
        if key not in _ROUTES:
            raise bad(f"routes.{key}", "one of " + ", ".join(sorted(_ROUTES)), key)
    routes = Routes(**{k: text(f"routes.{k}", v, path=True) for k, v in routes_data.items()})
    sql = text("messages_sql", data.get("messages_sql", AISDK_MESSAGES_SQL))
    if "%(chat_id)s" not in sql:
        raise bad("messages_sql", "SQL with %(chat_id)s where the chat's id goes", sql)
    reset = data.get("reset_sql")
    schema = data.get("schema", protocol == "contract")
    if not isinstance(schema, bool):
        raise bad("schema", "true or false", schema)
    start = data.get("start")
    model = data.get("model")
    return Profile(
        protocol=protocol, start=text("start", start) if start is not None else None,
        env={str(k): str(v) for k, v in env.items()}, login=login, routes=routes,
        messages_sql=sql, reset_sql=text("reset_sql", reset) if reset is not None else None,
        schema=schema, model=text("model", model) if model is not None else None,
        source=source)


def _lines(node: Any, prefix: str = "") -> dict[str, int]:
    """The 1-based line of every key of a YAML mapping (nested keys as ``a.b``)."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            out[name] = key.start_mark.line + 1
            out.update(_lines(value, name + "."))
    return out


TEMPLATE = """\
# chat-harness profile: how chat-harness starts, logs into and reads your chat backend.
# Run it with:  chat-harness run --profile chat-harness.yaml scenarios/
# Reference: docs/protocols.md (protocols, invariants I-..., every setting below).

# The protocol your backend speaks:
#   ai-sdk    POST /api/chat answered with the AI SDK 5 UI message stream
#             (toUIMessageStreamResponse / createUIMessageStream, like vercel/ai-chatbot)
#   contract  the chat API of chat-harness's CONTRACT.md
protocol: ai-sdk

# The command that starts your backend (run through sh, in the current folder). It must
# listen on $PORT; the harness waits for GET routes.ready. Leave it out and give
# --target-url for a backend you start yourself.
start: npm run start

# The environment names your backend reads, mapped to what the harness provides:
# {port} {database_url} {provider_url} {provider_api_key} {jwt_secret} {provider_timeout_ms}.
# PORT, DATABASE_URL, OPENROUTER_BASE_URL, OPENROUTER_API_KEY, JWT_SECRET and
# PROVIDER_TIMEOUT_MS are always set; add the names your app uses instead:
env:
  # POSTGRES_URL: "{database_url}"
  # AUTH_SECRET: "{jwt_secret}"
  # OPENAI_BASE_URL: "{provider_url}"

# How a test user logs in: bearer (Authorization: Bearer <HS256 JWT signed with
# {jwt_secret}, sub = the user's id), or cookie (GET the route; it sets a session cookie).
login:
  kind: bearer
  # kind: cookie
  # route: /api/auth/guest

routes:
  chat: /api/chat        # POST {id, message: {id, role, parts}, selectedChatModel, ...}
  history: /api/history  # GET the user's chats
  ready: /api/health     # GET answers 2xx/3xx once the backend can serve

# The SQL that reads one chat's stored messages, oldest first (%(chat_id)s is the chat's
# id). Columns: id, role, and parts (a JSON list of {type, text}) or content (text).
messages_sql: >-
  SELECT id, role, parts, "createdAt" FROM "Message_v2"
  WHERE "chatId" = %(chat_id)s ORDER BY "createdAt", id

# Empties your tables between scenarios (optional: every scenario uses new chat ids).
# reset_sql: DELETE FROM "Message_v2"; DELETE FROM "Chat"

# The model every turn sends (selectedChatModel), when your app accepts only its own
# model ids; without it, each scenario's model is sent (the mock provider answers any).
# Pick one that is not your title model, so the two calls differ by model too.
# model: chat-model
"""
