"""The ``are-workers`` command line."""
