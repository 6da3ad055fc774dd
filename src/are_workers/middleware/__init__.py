"""Dramatiq middleware, one class per module."""
