"""Contract fuzzing: schemathesis over ``harness/contract/openapi.yaml`` (``chat-harness fuzz``).

- :mod:`harness.fuzz.run`: the profiles, the options and the run itself
- :mod:`harness.fuzz.checks`: the chat checks of each answer, registered with schemathesis
- :mod:`harness.fuzz.probes`: the chat checks that send requests of their own
- :mod:`harness.fuzz.hooks`: what generated requests may carry

The backend comes from :mod:`harness.targets` (``served.serve_reference``: the reference
on a loopback port).

Nothing here is imported by the pytest plugin or ``import harness``:
schemathesis and Hypothesis load only when a fuzz run starts.
"""
