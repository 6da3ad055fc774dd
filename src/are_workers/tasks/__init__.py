"""Dramatiq actors, one module per domain. Import ``are_workers.broker`` first."""
