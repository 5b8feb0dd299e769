"""The durable spool: the queue the handlers commit to, its SQLite side, and the reply waiters."""
