"""Stateful conversation testing: Hypothesis plays the chat client (``chat-harness explore``).

- :mod:`harness.explore.machine`: the rules (a client's actions) and the invariant
- :mod:`harness.explore.driver`: a live scenario run, one generated step at a time
- :mod:`harness.explore.invariants`: what holds after every step
- :mod:`harness.explore.emit`: a failing sequence as scenario YAML
- :mod:`harness.explore.runner`: profiles, an exploration, the mutant report

Nothing here is imported by the pytest plugin or ``import harness``;
Hypothesis loads when an exploration starts.
"""
