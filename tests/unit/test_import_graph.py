"""The layering the architecture relies on, checked over the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "are_workers"
SERVICES = SRC / "services"

#: Outside resumes, only these modules may import it, and only these names of it.
RESUMES_USERS = {
    "tasks/resumes.py": None,  # its actors
    "cli/pipeline.py": None,  # the CLI
    "cli/main.py": None,
}
#: Matching reads resumes with the resume parser, and only with it.
PARSER = {"are_workers.services.resumes.parsing"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_resume_actors_the_cli_and_the_parser_use_reach_into_resumes() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel.startswith("services/resumes/"):
            continue
        used = {m for m in _imports(path) if m.startswith("are_workers.services.resumes")}
        if not used:
            continue
        allowed = PARSER if rel.startswith("services/matching/") else RESUMES_USERS.get(rel, set())
        if allowed is None:
            continue
        extra = {m for m in used if not any(m.startswith(a) for a in allowed)}
        extra.discard("are_workers.services.resumes")
        if extra:
            bad.append((rel, sorted(extra)))
    assert bad == []


def test_the_shared_kernel_sits_beside_the_domains() -> None:
    kernel = {"embeddings.py", "consent.py", "documents.py", "skills.py", "storage.py"}
    assert kernel <= {p.name for p in SERVICES.iterdir()}
    for name in kernel:
        assert not any(m.startswith("are_workers.services.resumes") for m in
                       _imports(SERVICES / name)), name  # fmt: skip


def test_no_module_outside_ml_imports_heavy_ml_libraries_at_top_level() -> None:
    heavy = {"torch", "transformers", "ctranslate2", "faster_whisper", "cv2", "onnxruntime",
             "llama_cpp"}  # fmt: skip
    bad = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel.startswith("ml/"):
            continue
        for node in ast.parse(path.read_text()).body:  # top level only: lazy imports are fine
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            bad += [(rel, n) for n in names if n in heavy]
    assert bad == []
