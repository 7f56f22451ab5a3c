"""Moved to :mod:`harness.result` (below the runner and the reporters); kept for imports."""

from harness.result import BackendLog, Check, Exchange, Failure, ScenarioResult, StepRecord

__all__ = ["BackendLog", "Check", "Exchange", "Failure", "ScenarioResult", "StepRecord"]
