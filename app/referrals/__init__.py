"""Referrals: one request per route that a death be reviewed, and the queues they sit in."""
