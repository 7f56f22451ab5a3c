"""Settings from the environment (C-RUN-1) and `python -m harness.reference` (C-RUN-2)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from runs import poll_until

from harness.reference import MUTANTS, VARIANTS, Settings, create_app

REPO = Path(__file__).resolve().parents[2]


def test_exported_names() -> None:
    import harness.reference as reference

    assert sorted(reference.__all__) == ["MUTANTS", "Settings", "VARIANTS", "create_app"]
    assert callable(create_app) and MUTANTS and VARIANTS


def test_from_env_reads_the_contract_names() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://postgres@/chat?host=/tmp/x&port=5432",
            "OPENROUTER_BASE_URL": "http://127.0.0.1:9100/api/v1/",
            "OPENROUTER_API_KEY": "sk-1",
            "JWT_SECRET": "s" * 40,
            "PROVIDER_TIMEOUT_MS": "1500",
            "CHAT_HARNESS_MUTANT": " request-id-first-match, insert-not-upsert ,",
        }
    )
    assert settings.database_url.startswith("postgresql://postgres@/chat")
    assert settings.completions_url == "http://127.0.0.1:9100/api/v1/chat/completions"
    assert (settings.provider_api_key, settings.jwt_secret) == ("sk-1", "s" * 40)
    assert settings.provider_timeout_ms == 1500
    assert settings.mutants == {"request-id-first-match", "insert-not-upsert"}


def test_from_env_defaults_and_errors() -> None:
    base = {"DATABASE_URL": "postgresql://x", "OPENROUTER_BASE_URL": "http://p"}
    settings = Settings.from_env(base)
    assert settings.provider_timeout_ms == 30000 and settings.mutants == frozenset()
    assert settings.provider_api_key == "test-key"
    for broken in [
        {},
        {"DATABASE_URL": "postgresql://x"},
        {**base, "PROVIDER_TIMEOUT_MS": "-1"},
        {**base, "PROVIDER_TIMEOUT_MS": "soon"},
        {**base, "CHAT_HARNESS_MUTANT": "x"},
    ]:
        with pytest.raises(ValueError):
            Settings.from_env(broken)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_python_m_serves_and_stops_on_sigterm(db: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": db,
        "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1",
        "PYTHONPATH": str(REPO),
    }
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "harness.reference"], env=env,
                                   cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        def healthy() -> dict[str, object] | None:
            if process.poll() is not None:
                pytest.fail(f"server exited early with {process.returncode}: "
                            f"{log.read_text(errors='replace')[-2000:]}")
            try:
                url = f"http://127.0.0.1:{port}/api/health"
                with urllib.request.urlopen(url, timeout=5) as reply:
                    assert reply.headers["x-request-id"]
                    return dict(json.load(reply))
            except OSError:
                return None

        answer = poll_until(healthy, lambda: "no health answer within 30 s: "
                            + log.read_text(errors="replace")[-2000:], 30)
        assert answer == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
