"""Reads that may come from a read replica (docs/replica.md): the reports and the change feed.

A PostgreSQL hot standby of the primary (``LFD_READ_DATABASE_URL``) serves them while its lag
is within bounds (monitor.py); a client that has just written reads from the primary until
the replica has replayed its write (reads.py), and the response to a write carries a token
(``X-LFD-Read-After``, the primary's WAL position after the commit) that any worker of any
replica of the service honours. Row-level security holds on the replica as on the primary:
the data scope is sent with each transaction (app.db), and the replica is reached as the same
service role.
"""
