"""``python -m harness.provider``: the scripted provider as a standalone server.

What :class:`harness.provider.remote.ProviderServer` starts; also handy by hand
(``chat-harness provider`` is the same thing).
"""

from __future__ import annotations

import argparse
import sys

from harness.provider.server import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.provider",
        description="The chat-harness scripted LLM provider (OpenRouter-compatible) over HTTP.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on, 0 for any free one (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--port-file", default=None, metavar="PATH",
                        help="also write the bound port to this file (removed on exit)")
    parser.add_argument("--journal", default=None, metavar="DIR",
                        help="also take commands from DIR/commands and record every call in "
                        "DIR/calls (what ProviderServer uses: no control round trips)")
    args = parser.parse_args(argv)
    return serve(args.host, args.port, args.port_file, journal=args.journal)


if __name__ == "__main__":
    sys.exit(main())
