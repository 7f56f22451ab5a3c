"""Contract fuzzing: the reference passes, mutants are found, staging bounds hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.db import Database
from harness.errors import ConfigError
from harness.fuzz.command import fuzz_mutants
from harness.fuzz.run import FuzzOptions, cli_args, identities, run_fuzz, write_files


def _fuzz(capsys: pytest.CaptureFixture[str], database: Database, **options: object
          ) -> tuple[int, str]:
    code = run_fuzz(FuzzOptions(**options), db=database)  # type: ignore[arg-type]
    return code, capsys.readouterr().out


def test_the_reference_passes_the_ci_profile(capsys: pytest.CaptureFixture[str],
                                             database: Database) -> None:
    code, out = _fuzz(capsys, database)
    assert code == 0, out
    assert "No issues found" in out
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in out, out


@pytest.mark.parametrize(("mutant", "check"), [
    ("framework-error-body", "chat_error_envelope"),  # FastAPI's {"detail"} on a 405/404
    ("insert-not-upsert", "chat_idempotent_sync"),  # a stored id sent again: 500
    ("foreign-session-readable", "chat_foreign_session"),  # the peer user reads it
])
def test_a_mutant_is_found_with_a_reproduction(capsys: pytest.CaptureFixture[str],
                                               database: Database, mutant: str, check: str,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = _fuzz(capsys, database, mutants=frozenset([mutant]),
                      extra=["--max-failures", "1"])  # found is enough here
    assert code == 1, out
    # schemathesis's own cache of failures stays off: it would replay this run's requests
    # (this port, these users) at the start of the next run made in the same folder
    assert not (tmp_path / ".schemathesis").exists()
    assert f"Custom check failed: `{check}`" in out
    assert "Reproduce with:" in out and "curl -X " in out
    assert "Authorization: [Filtered]" in out  # tokens never show
    assert '"sessionId": "[Filtered]"' not in out  # the data a reproduction needs does


def test_read_only_against_a_url_sends_only_reads(
        capsys: pytest.CaptureFixture[str], database: Database, config: RunConfig) -> None:
    """The staging setup: a URL, the secret, a rate, a time bound, GET only."""
    from harness.targets.served import serve_reference

    database.reset()
    with serve_reference(database, jwt_secret="a-staging-secret-of-at-least-32-bytes!") as url:
        code = run_fuzz(FuzzOptions(
            target_url=url, jwt_secret="a-staging-secret-of-at-least-32-bytes!",
            read_only=True, rate="50/s", max_time_s=5, max_examples=5))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Operations:       4 selected / 10 total" in out  # the four GET operations
    assert database.query("SELECT count(*) AS n FROM chat_sessions") == [{"n": 0}]


def test_run_options_become_schemathesis_arguments(tmp_path: Path) -> None:
    options = FuzzOptions(read_only=True, rate="5/s", max_time_s=120, max_examples=7, seed=3)
    users = [("alice", "t1"), ("bob", "t2")]
    config, auth = write_files(tmp_path, users, read_only=True)
    args = cli_args(options, "http://127.0.0.1:9", config, auth)
    assert args[:3] == ["--config-file", str(config), "run"]
    for pair in (["--include-method", "GET"], ["--rate-limit", "5/s"], ["--max-time", "120"],
                 ["--max-examples", "7"], ["--seed", "3"], ["--auth-wfc-user", "alice"]):
        assert any(args[i:i + 2] == pair for i in range(len(args))), pair
    saved = json.loads(auth.read_text())
    assert [a["fixedHeaders"][0]["value"] for a in saved["auth"]] == ["Bearer t1", "Bearer t2"]
    toml = config.read_text()
    assert 'peer_authorization = "Bearer t2"' in toml and "writes = false" in toml
    assert 'unexpected-methods = ["options", "trace"]' in toml
    assert oct(auth.stat().st_mode & 0o777) == "0o600"


def test_bad_bounds_and_missing_credentials_are_usage_errors() -> None:
    with pytest.raises(ConfigError, match="--rate expects"):
        cli_args(FuzzOptions(rate="fast"), "http://x", Path("c"), Path("a"))
    with pytest.raises(ConfigError, match="needs tokens it accepts"):
        identities(FuzzOptions(target_url="http://x"), None, hours=1)
    with pytest.raises(ConfigError, match="one or two tokens"):
        identities(FuzzOptions(token=["a", "b", "c"]), None, hours=1)
    assert identities(FuzzOptions(token=["a"]), None, hours=1) == [("alice", "a")]
    with pytest.raises(ConfigError, match="needs the in-process reference"):
        run_fuzz(FuzzOptions(target_url="http://127.0.0.1:9", mutants=frozenset(["x"])))


def test_options_schemathesis_does_not_take_are_a_usage_error(database: Database) -> None:
    """Unknown options go to `schemathesis run`; its refusal is a hint, not a traceback."""
    with pytest.raises(ConfigError, match="No such option '--no-such-option'") as refused:
        run_fuzz(FuzzOptions(extra=["--no-such-option"]), db=database)
    assert "schemathesis run --help" in str(refused.value.hint)
    with pytest.raises(ConfigError, match="--mutants needs the in-process reference"):
        fuzz_mutants(FuzzOptions(target_url="http://127.0.0.1:9"))
