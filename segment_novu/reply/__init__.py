"""Stage 4, results → the one reply Segment gets: outcomes, the status contract, event log lines."""
