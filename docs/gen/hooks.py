"""mkdocs hooks: the generated reference, and nav entries for pages that may not exist yet.

``<!-- generated: NAME -->`` on a line of its own becomes ``reference.SECTIONS[NAME]()``
(see ``docs/gen/reference.py``); an unknown name fails the build. Pages of
:data:`OPTIONAL` (written on other branches at the same time) are dropped from
the nav while they do not exist, so that ``mkdocs build --strict`` passes with or
without them; any other missing page still fails it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import reference  # docs/gen/reference.py, next to this file

OPTIONAL = frozenset({"protocols.md", "ai-sdk.md", "speed.md"})
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)


def _prune(nav: Any, docs: Path) -> Any:
    if isinstance(nav, list):
        kept = [_prune(item, docs) for item in nav]
        return [item for item in kept if item is not None]
    if isinstance(nav, dict):
        out = {key: _prune(value, docs) for key, value in nav.items()}
        return None if any(v is None or v == [] for v in out.values()) else out
    if isinstance(nav, str) and nav in OPTIONAL and not (docs / nav).is_file():
        return None
    return nav


def on_config(config: Any) -> Any:
    config.nav = _prune(config.nav, Path(config.docs_dir))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def section(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in reference.SECTIONS:
            raise ValueError(f"{page.file.src_uri}: no generated section {name!r} "
                             f"(known: {', '.join(reference.SECTIONS)})")
        return reference.SECTIONS[name]()

    return MARKER.sub(section, markdown)
