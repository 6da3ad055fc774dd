"""Imports every actor module, so a worker knows every job kind in the catalogue."""

from __future__ import annotations

import importlib

ACTOR_MODULES = [
    "are_workers.tasks.system",
    "are_workers.tasks.resumes",
    "are_workers.tasks.matching",
    "are_workers.tasks.media",
    "are_workers.tasks.assessments",
    "are_workers.tasks.portfolios",
    "are_workers.tasks.compliance",
]


def load_all() -> None:
    for module in ACTOR_MODULES:
        importlib.import_module(module)
