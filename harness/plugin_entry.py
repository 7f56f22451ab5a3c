"""The ``pytest11`` entry point ``chat_harness``: loads :mod:`harness.plugin` under its
module name.

pytest registers an entry point's module under the entry point's name, and
``-p harness.plugin`` registers it under the module's name; one module under two
names is refused (``Plugin already registered under a different name``). So the
entry point is this module, which asks for the plugin the way ``-p`` does: with
chat-harness installed, ``pytest -p harness.plugin`` and ``-p chat_harness`` both
work, and ``-p no:chat_harness`` keeps the plugin out.
"""

pytest_plugins = ["harness.plugin"]
