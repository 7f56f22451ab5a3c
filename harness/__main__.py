"""``python -m harness`` is ``chat-harness``."""

from harness.cli import main

raise SystemExit(main())
