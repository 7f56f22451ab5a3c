"""``chat-harness load``: many simulated clients at once, then an audit of what was stored.

A scenario runs one client at a time; the bugs of a chat backend that only show
under load (a lost message when two syncs race, a duplicate key under
concurrent upserts, stats computed from a stale read, a 500 when the pool runs
dry) need many. Each simulated client is the harness's correct front end
(:class:`harness.scenario.frontend.ChatClient`) holding one conversation of its
own, as one of two clients of its user: its turns meet scripted 429s and 5xx
(some retried by the backend, some passed on and retried by the client under
the same id), its syncs are sent twice in a row or twice at once.

The provider answers every client deterministically however the requests
interleave: each client asks for a model of its own, and its answers are
planned up front in that model's queue (``for_model``), in the order its
conversation will ask for them.

Afterwards the audit compares what every client holds with the database and
with the API: no message lost, none duplicated, no 5xx the script did not
cause, each session's ``message_count`` and ``total_tokens`` exact, and every
planned provider answer taken. Throughput and latency are printed, not judged:
they depend on the machine.

- :mod:`harness.load.clients`: a client's user, model, scripted conversation and provider plan
- :mod:`harness.load.traffic`: the clients' requests, recorded, and what they got back
- :mod:`harness.load.audit`: what the clients hold, against the API and the database
- :mod:`harness.load.report`: the samples, the counts, percentiles, the printed report
- :mod:`harness.load.run`: start, load, audit, stop (:func:`run_load`), and the command

Nothing here is imported by the pytest plugin or ``import harness``; the
command's parser imports only this package's own modules (the rest loads when
a load starts).
"""

from harness.load.clients import MODEL
from harness.load.report import LoadReport
from harness.load.run import LoadOptions, add_parser, main, run_load

__all__ = ["MODEL", "LoadOptions", "LoadReport", "add_parser", "main", "run_load"]
