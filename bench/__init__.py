"""Performance benchmarks of the gateway (``python -m bench``, ``make bench``); see docs/PERFORMANCE.md.

Figures, not timed assertions: each run compares the gateway with baselines measured in the
same run on the same machine, the server pinned to one core and the load on the other.
"""
