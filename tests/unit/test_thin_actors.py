"""Actors stay thin: the logic lives in services, an actor body is at most 15 lines."""

from __future__ import annotations

import ast
from pathlib import Path

TASKS = Path(__file__).resolve().parents[2] / "src" / "are_workers" / "tasks"
MAX_BODY_LINES = 15


def _is_actor(node: ast.FunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "job_actor":
            return True
    return False


def _body_lines(node: ast.FunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring does not count
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def test_every_actor_body_is_at_most_15_lines() -> None:
    actors: dict[str, int] = {}
    for path in sorted(TASKS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and _is_actor(node):
                actors[f"{path.name}:{node.name}"] = _body_lines(node)
    assert len(actors) >= 20  # the check sees the actors
    too_long = {name: lines for name, lines in actors.items() if lines > MAX_BODY_LINES}
    assert too_long == {}
