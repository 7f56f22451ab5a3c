"""``python -m bench``: the benchmark table (same as ``chat-harness bench``)."""

from __future__ import annotations

import sys

from bench.runner import main

sys.exit(main())
