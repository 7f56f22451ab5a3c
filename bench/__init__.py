"""chat-harness's own speed and staying-power tools (a checkout's tools, not packaged).

``python -m bench`` / ``chat-harness bench``: the benchmark table
(:mod:`bench.runner`); ``python bench/flakes.py``: the flake hunt.
"""
