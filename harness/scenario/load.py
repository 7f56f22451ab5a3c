"""From a YAML file to runnable :class:`Scenario` objects, or a precise error.

Every error names the file, the 1-based line, the key (as a path such as
``steps[3].provider.status``), what was expected and what came, and ends with
a hint.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import typing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import Location, ScenarioError
from harness.scenario import lint, yamlsource
from harness.scenario import values as value_rules
from harness.scenario.model import (
    HTTP_METHODS,
    ClientOptions,
    Header,
    HttpStep,
    ParallelStep,
    Step,
)
from harness.scenario.steps import KINDS as STEP_KINDS
from harness.scenario.steps import kind_of

CLAUSE_ID = re.compile(r"^C-[A-Z]+-\d+$")


@dataclass(frozen=True)
class Scenario:
    """One runnable scenario (one matrix combination of one file)."""

    name: str
    file: Path
    display: str  # the file as the user named it, for messages
    header: Header
    steps: tuple[Step, ...]
    step_lines: tuple[int, ...]
    client: ClientOptions
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={json.dumps(v)}" for k, v in self.params.items())
        return f"{self.name}[{inner}]"

    def check_enabled(self, name: str) -> bool:
        return self.header.checks.get(name, True)

    @property
    def pinned_ids(self) -> str | None:
        """Why the scenario needs a database emptied before it, or ``None``.

        A fixed ``session:`` or raw request bodies name ids that another
        scenario (or an earlier run) may already have stored for another user.
        """
        if self.header.session:
            return f"it pins the session id {self.header.session}"
        for step in self.steps:
            why = kind_of(step).pins(step)
            if why:
                return why
        return None

    def location(self, step: int | None = None) -> Location:
        line = self.step_lines[step] if step is not None else 0
        return Location(self.display, line)


# -- error mapping -----------------------------------------------------------


def _walk(node: Any, loc: tuple[Any, ...], prefix: str) -> tuple[int, Any, str]:
    """Follow ``loc`` into the YAML nodes: the best line, the value, the key path.

    pydantic puts union member names ("str", "list[...]") into ``loc``; parts
    that are not in the YAML are skipped, except a last one (a missing key).
    """
    line = getattr(node, "line", 0)
    current: Any = node
    path = prefix
    for i, part in enumerate(loc):
        if isinstance(current, yamlsource.Node) and part in current:
            line = current.line_of(part)
            current = current[part]
            path = f"{path}.{part}" if path else str(part)
        elif isinstance(current, yamlsource.NodeList) and isinstance(part, int):
            line = current.line_of(part)
            current = current[part] if part < len(current) else None
            path = f"{path}[{part}]"
        elif (i == len(loc) - 1 and isinstance(current, dict) and isinstance(part, str)
              and part.isidentifier()):
            path = f"{path}.{part}" if path else part
    return line, current, path


def _field_names(model: type[BaseModel]) -> list[str]:
    names: list[str] = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
    return names


def _all_keys(model: type[BaseModel]) -> list[str]:
    """Every key any nested model accepts, for did-you-mean."""
    from harness.scenario import model as m

    keys: set[str] = set()
    for cls in (model, m.ProviderAnswer, m.Expect, m.ClientOptions, m.Token, m.ProviderExpect,
                m.StreamError):
        keys.update(_field_names(cls))
    return sorted(keys)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation such as ``ProviderAnswer | list[ProviderAnswer]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model that validates the mapping at ``loc`` (where an unknown key was found).

    Parts that name no field (list indexes, pydantic's union member tags) are
    passed over, so the keys offered are those allowed where the typo is.
    """
    current = model
    for part in loc:
        fields = {info.alias or name: info for name, info in current.model_fields.items()}
        info = fields.get(part) if isinstance(part, str) else None
        if info is None:
            continue
        inner = _models_in(info.annotation)
        if not inner:
            break
        current = inner[0]
    return current


def _phrase(msg: str) -> str:
    """pydantic's message as what was expected: "a valid integer", "a list of at least
    1 item" (from "List should have at least 1 item after validation, not 0")."""
    if msg.startswith(("List should have", "String should have")):
        msg = "a " + msg.split(" after validation")[0].split(", not ")[0].replace(
            "List should have", "list of").replace("String should have", "text of")
    return msg.removeprefix("Input should be ")


def _scenario_error(
    exc: ValidationError, node: Any, *, display: str, prefix: str, model: type[BaseModel],
    fallback_line: int,
) -> ScenarioError:
    """The first validation error, placed in the file and phrased for people."""
    errors = exc.errors()
    # the most telling error first: the deepest (a union such as ``ProviderAnswer |
    # list[ProviderAnswer]`` fails at its top for the member the value is not, and
    # deep inside the one it is), and a misspelt key before the key it misses
    err = max(errors, key=lambda e: (len(e["loc"]), e["type"] == "extra_forbidden"))
    errors = [err, *(e for e in errors if e is not err)]
    loc = tuple(err["loc"])
    kind = err["type"]
    line, value, key = _walk(node, loc, prefix)
    line = line or fallback_line
    location = Location(display, line)
    if kind == "extra_forbidden":
        bad = str(loc[-1])
        here = _field_names(_model_at(model, loc[:-1]))
        close = (difflib.get_close_matches(bad, here, n=1, cutoff=0.6)
                 or difflib.get_close_matches(bad, _all_keys(model), n=1, cutoff=0.6))
        hint = f"did you mean '{close[0]}'?" if close else (
            f"allowed keys here: {', '.join(here)}"
        )
        return ScenarioError("unknown key", location=location, key=key, hint=hint)
    if kind == "missing":
        return ScenarioError(
            "required key is missing", location=location, key=key,
            hint=f"add '{loc[-1]}:' here",
        )
    expected = _phrase(err["msg"]).removeprefix("Value error, ")
    # a union (``int | Literal["2xx", ...] | list[int]``) fails once per member:
    # name every form the value may take, not only the first
    for other in errors[1:]:
        other_loc = tuple(other["loc"])
        if (other["type"] not in ("missing", "extra_forbidden", "value_error")
                and _walk(node, other_loc, prefix)[2] == key
                and len(other_loc) == len(loc)):
            form = _phrase(other["msg"])
            if form not in expected:
                expected += f" or {form}"
    if kind == "value_error":
        return ScenarioError(expected, location=location, key=key or None,
                            hint="see the scenario reference: docs/reference/scenarios.md")
    got = err.get("input", value)
    typed = any(word in expected for word in ("integer", "boolean", "number"))
    shown = ("mapping" if isinstance(got, dict) else "list" if isinstance(got, list)
             else type(got).__name__)
    return ScenarioError(
        f"expected {expected}, got {got!r} ({shown})",
        location=location, key=key,
        hint="write numbers and true/false without quotes" if isinstance(got, str) and typed
        else "quote the value to make it a string" if "string" in expected
        else "see the scenario reference: docs/reference/scenarios.md",
    )


def _validate(model: type[BaseModel], node: Any, *, display: str, prefix: str,
              fallback_line: int) -> Any:
    try:
        return model.model_validate(node)
    except ValidationError as exc:
        raise _scenario_error(exc, node, display=display, prefix=prefix, model=model,
                              fallback_line=fallback_line) from None


# -- steps -------------------------------------------------------------------


def _step(raw: Any, index: int, line: int, display: str, *, prefix: str | None = None) -> Step:
    key = prefix or f"steps[{index}]"
    loc = Location(display, line)
    if isinstance(raw, str) and raw in STEP_KINDS:
        raw = {raw: None}
    if not isinstance(raw, dict):
        raise ScenarioError(
            f"expected a step (a mapping such as 'chat: hello'), got {raw!r}",
            location=loc, key=key, hint=f"a step starts with one of: {', '.join(STEP_KINDS)}",
        )
    kinds = [k for k in STEP_KINDS if k in raw]
    if len(kinds) != 1:
        if kinds:
            raise ScenarioError(
                f"a step has exactly one kind, this one has {', '.join(kinds)}",
                location=loc, key=key, hint="split it into several steps",
            )
        first = next(iter(raw), "")
        close = difflib.get_close_matches(str(first), list(STEP_KINDS), n=1, cutoff=0.5)
        raise ScenarioError(
            f"unknown step kind {first!r}",
            location=loc, key=key,
            hint=(f"did you mean '{close[0]}'? " if close else "")
            + f"a step starts with one of: {', '.join(STEP_KINDS)}",
        )
    model = STEP_KINDS[kinds[0]].model
    step = _validate(model, raw, display=display, prefix=key, fallback_line=line)
    if isinstance(step, ParallelStep):
        step = _group(step, raw, index, loc, display, key)
    if isinstance(step, HttpStep):
        method, _, target = step.http.partition(" ")
        if method not in HTTP_METHODS or not target.startswith("/") or any(
                c.isspace() for c in target):
            line_http = raw.line_of("http") if isinstance(raw, yamlsource.Node) else line
            raise ScenarioError(
                f"expected 'METHOD /path', got {step.http!r}",
                location=Location(display, line_http), key=f"{key}.http",
                hint="e.g. 'POST /api/chat/messages'" + (
                    "; the path holds no spaces (write one as %20, or give 'query:')"
                    if method in HTTP_METHODS and target.startswith("/") else
                    f"; methods: {', '.join(HTTP_METHODS)}"),
            )
    return step


def _group(step: ParallelStep, raw: Any, index: int, loc: Location, display: str, key: str
           ) -> ParallelStep:
    """A ``parallel:`` step's own steps (any kind but ``parallel``) and its ``before:``."""
    items = raw["parallel"]
    if not isinstance(items, yamlsource.NodeList) or len(items) < 2:
        raise ScenarioError(
            "expected a list of at least two steps to send at once",
            location=loc, key=f"{key}.parallel",
            hint="e.g. two 'http:' steps, or '[resync, resync]'",
        )
    parsed = {}
    for field_name in ("parallel", "before"):
        nodes = raw.get(field_name) if isinstance(raw, yamlsource.Node) else None
        subs = []
        if not isinstance(nodes, yamlsource.NodeList):
            nodes = yamlsource.NodeList()
            nodes.item_lines = []
        for j, item in enumerate(nodes):
            line = nodes.line_of(j)
            sub_step = _step(item, index, line, display, prefix=f"{key}.{field_name}[{j}]")
            if isinstance(sub_step, ParallelStep):
                raise ScenarioError(
                    "a parallel step cannot run inside another",
                    location=Location(display, line), key=f"{key}.{field_name}[{j}]",
                    hint="put its steps into this one's list, or give this one 'rounds:'")
            if not kind_of(sub_step).parallel:
                together = sorted(k.name for k in STEP_KINDS.values() if k.parallel)
                raise ScenarioError(
                    f"a {sub_step.kind} step cannot run in parallel",
                    location=Location(display, line), key=f"{key}.{field_name}[{j}]",
                    hint=f"parallel takes {', '.join(together)} steps")
            subs.append(sub_step)
        parsed[field_name] = tuple(subs)
    scripted = [s for s in parsed["parallel"] if s.answers()]
    if len({json.dumps([a.model_dump() for a in s.answers()], sort_keys=True)
            for s in scripted}) > 1 and not all(
                a.for_model for s in scripted for a in s.answers()):
        first, other = (i for i, s in enumerate(parsed["parallel"]) if s.answers())
        raise ScenarioError(
            "the steps of a parallel group plan different provider answers, but they call "
            "the provider at once: which call takes which answer depends on the timing",
            location=Location(display, items.line_of(other)),
            key=f"{key}.parallel[{other}].provider",
            hint=f"give them the same provider script as parallel[{first}], or route each "
            "answer with 'for_model:' and a model of its own")
    return step.model_copy(update={
        "parsed": parsed["parallel"], "before_parsed": parsed["before"],
        "lines": tuple(items.line_of(j) for j in range(len(items)))})


# -- files -------------------------------------------------------------------


def load_file(path: Path, *, display: str | None = None) -> list[Scenario]:
    """Load ``path`` and expand its matrix into scenarios."""
    shown = display or str(path)
    doc = yamlsource.load(path, display=shown)
    if doc is None:
        raise ScenarioError(
            "the file holds no scenario (it is empty, or only comments)",
            location=Location(shown, 1), hint="start the file with 'name:' and 'steps:'",
        )
    if not isinstance(doc, yamlsource.Node):
        raise ScenarioError(
            "a scenario file holds one mapping (name, covers, steps, ...)",
            location=Location(shown, getattr(doc, "line", 0) or _first_content_line(path)),
            hint="start the file with 'name:' and 'steps:'",
        )
    value_rules.check(doc, shown)
    header: Header = _validate(Header, doc, display=shown, prefix="", fallback_line=1)
    if _timestamp(header.start_at) is None:
        raise ScenarioError(
            f"expected an ISO-8601 timestamp, got {header.start_at!r}",
            location=Location(shown, doc.line_of("start_at")), key="start_at",
            hint="e.g. 2025-08-12T14:34:08.861Z",
        )
    for i, clause in enumerate(header.covers):
        if not CLAUSE_ID.match(clause):
            covers = doc["covers"]
            raise ScenarioError(
                f"expected a clause id such as C-MSG-2, got {clause!r}",
                location=Location(shown, covers.line_of(i)), key=f"covers[{i}]",
                hint="clause ids are listed in the contract (chat-harness coverage)",
            )
    raw_steps = doc["steps"]
    if not raw_steps:
        raise ScenarioError(
            "a scenario needs at least one step",
            location=Location(shown, doc.line_of("steps")), key="steps",
            hint="add e.g. '- chat: hello'",
        )
    steps: list[Step] = []
    lines: list[int] = []
    for i, raw in enumerate(raw_steps):
        line = raw_steps.line_of(i)
        steps.append(_step(raw, i, line, shown))
        lines.append(line)
    name = header.name or path.stem
    combos: list[dict[str, Any]] = [{}]
    if header.matrix:
        keys = list(header.matrix)
        for key in keys:
            values = doc["matrix"][key]
            if not header.matrix[key]:
                raise ScenarioError(
                    "a matrix entry needs at least one value",
                    location=Location(shown, doc["matrix"].line_of(key)), key=f"matrix.{key}",
                    hint=f"list the values to run with, e.g. '{key}: [true, false]'",
                )
            for i, value in enumerate(header.matrix[key]):
                # each value on its own, so that an error names its line
                _validate(ClientOptions, {key: value}, display=shown, prefix="matrix",
                          fallback_line=values.line_of(i))
        combos = [dict(zip(keys, values, strict=True))
                  for values in itertools.product(*(header.matrix[k] for k in keys))]
    lint.check(header, steps, doc, shown)
    out = []
    for params in combos:
        client_raw = {**header.client.model_dump(), **params}
        client = _validate(ClientOptions, client_raw, display=shown, prefix="matrix",
                           fallback_line=doc.line_of("matrix"))
        out.append(Scenario(name=name, file=path, display=shown, header=header,
                            steps=tuple(steps), step_lines=tuple(lines), client=client,
                            params=params))
    return out


def _timestamp(text: str) -> datetime | None:
    """``text`` as an ISO-8601 instant (``Z`` allowed), or ``None``."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _first_content_line(path: Path) -> int:
    """The first line that is neither blank nor a comment (1 if there is none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    for number, text in enumerate(lines, 1):
        if text.strip() and not text.lstrip().startswith("#"):
            return number
    return 1


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files under ``paths`` (files as given, folders searched), sorted.

    ``.yaml`` and ``.yml`` in any case; a link to nothing is an error, not a file
    passed over without a word."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.suffix.lower() not in (".yaml", ".yml"):
                    continue  # .YAML and .Yml are scenarios too
                if q.is_symlink() and not q.exists():
                    raise yamlsource.dangling(q)
                if q.is_file():
                    found.append(q)
        else:
            found.append(p)
    return found
