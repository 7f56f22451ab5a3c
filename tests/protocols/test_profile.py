"""The backend profile: chat-harness.yaml or [tool.chat-harness], `chat-harness init`, and
what a profile changes of a run (protocol, start command, schema, environment names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import profile
from harness.cli import main
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.options import reproduce_argv
from harness.targets.blackbox import backend_env


def test_init_writes_a_profile_that_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert "chat-harness run --profile chat-harness.yaml" in capsys.readouterr().out
    loaded = profile.load(tmp_path / "chat-harness.yaml")
    assert loaded.protocol == "ai-sdk" and loaded.start == "npm run start"
    assert loaded.login.kind == "bearer" and loaded.routes.chat == "/api/chat"
    assert '"Message_v2"' in loaded.messages_sql and "%(chat_id)s" in loaded.messages_sql
    assert main(["init"]) == 2  # not over an existing one without --force
    assert "exists already" in capsys.readouterr().err
    assert profile.find(tmp_path) == tmp_path / "chat-harness.yaml"
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert main(["init", "-o", str(tmp_path / "file" / "profile.yaml")]) == 2  # no traceback
    assert "cannot be written" in capsys.readouterr().err


def test_a_pyproject_table_is_a_profile(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.chat-harness]\nprotocol = "ai-sdk"\n'
        'start = "node server.js"\nlogin = "cookie"\n[tool.chat-harness.env]\n'
        'POSTGRES_URL = "{database_url}"\n', encoding="utf-8")
    assert profile.find(tmp_path) == tmp_path / "pyproject.toml"
    loaded = profile.load(tmp_path / "pyproject.toml")
    assert (loaded.start, loaded.login.kind, loaded.login.route) == (
        "node server.js", "cookie", "/api/auth/guest")
    assert loaded.environment({"database_url": "postgresql://db"}) == {
        "POSTGRES_URL": "postgresql://db"}


@pytest.mark.parametrize(("text", "says"), [
    ("protocol: grpc\n", "chat-harness.yaml:1: protocol: expected one of contract, ai-sdk"),
    ("protocol: ai-sdk\nroutes:\n  chat: api/chat\n", ":3: routes.chat: expected a path"),
    ("protocol: ai-sdk\nlogin: {kind: oauth}\n", ":2: login.kind: expected bearer or cookie"),
    ("protcol: ai-sdk\n", "protcol: expected a known setting"),
    ("messages_sql: SELECT 1\n", "messages_sql: expected SQL with %(chat_id)s"),
    ("env: [A, B]\n", "env: expected a mapping NAME: value"),
])
def test_mistakes_are_named_with_file_line_and_key(tmp_path: Path, text: str, says: str
                                                   ) -> None:
    path = tmp_path / "chat-harness.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        profile.load(path)
    assert says in caught.value.render()


def test_a_placeholder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    loaded = profile.parse({"env": {"X": "{databse_url}"}}, "p.yaml")
    with pytest.raises(ConfigError, match=r"env.X.*databse_url"):
        loaded.environment({"database_url": "u"})


def test_a_profile_sets_protocol_command_schema_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "chat-harness.yaml"
    path.write_text('protocol: ai-sdk\nstart: npm start\nenv:\n  POSTGRES_URL: "{database_url}"'
                    '\n  AUTH_SECRET: "{jwt_secret}"\n  BASE: "{provider_url}"\n'
                    'routes: {ready: /}\n', encoding="utf-8")
    config = RunConfig.from_options(profile=str(path), jwt_secret="s" * 32)
    assert (config.protocol, config.target_cmd, config.apply_schema) == ("ai-sdk", "npm start",
                                                                         False)
    assert config.ready_path == "/"
    assert reproduce_argv(config) == ["--profile", str(path)]  # its command and schema go along
    env = backend_env(config, port=5, db=None, provider_url="http://127.0.0.1:9/api/v1")
    assert env["AUTH_SECRET"] == "s" * 32 and env["BASE"] == "http://127.0.0.1:9/api/v1"
    assert env["PORT"] == "5" and env["POSTGRES_URL"] == ""
    # --target-cmd and --protocol win over the profile's
    other = RunConfig.from_options(profile=str(path), target_cmd="./run.sh", protocol="contract")
    assert (other.target_cmd, other.protocol) == ("./run.sh", "contract")


def test_a_protocol_other_than_the_contract_needs_a_backend_that_speaks_it() -> None:
    with pytest.raises(ConfigError, match="needs a backend that speaks it"):
        RunConfig.from_options(protocol="ai-sdk")
