"""Every command with ``--json`` prints exactly one JSON document on stdout.

The commands are found by walking the CLI app, so a new ``--json`` command fails
:func:`test_every_json_command_is_run_here` until it is given its arguments below. Each runs
in a subprocess on a migrated database of its own, stdout captured apart from stderr.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import create_engine, text

from are_workers import ledger
from are_workers.cli.main import app
from tests.conftest import ROOT, TEMPLATE_DB, create_database, drop_database
from tests.media_db.media import FIXTURES
from tests.procs import PrivateRedis, start_worker, stop_worker, worker_env

pytestmark = pytest.mark.multiprocess


@dataclass
class Place:
    env: dict[str, str]
    data_dir: Path
    organization_id: uuid.UUID
    job_run_id: uuid.UUID


#: Command path → its arguments (besides ``--json``), given what :func:`place` made.
ARGUMENTS: dict[str, Callable[[Place], list[str]]] = {
    "status": lambda p: [],
    "services status": lambda p: [],
    "storage check-keys": lambda p: [],
    "jobs show": lambda p: [str(p.job_run_id)],
    "schedules": lambda p: [],
    "resume parse": lambda p: [str(ROOT / "samples" / "resumes" / "jamie_lee_junior_dev.txt")],
    "portfolio evaluate": lambda p: [
        str(ROOT / "samples" / "portfolios" / "backend_sam_okafor"),
        "--job",
        str(ROOT / "samples" / "jobs" / "backend_engineer.md"),
    ],
    "media analyze": lambda p: [str(FIXTURES / "no_audio.mp4")],
    "compliance data-map": lambda p: [],
    "compliance reapply-erasures": lambda p: [],
    "compliance verify-audit": lambda p: [],
    "compliance sign-pruning-records": lambda p: [],
    "compliance audit-partitions": lambda p: [],
    "compliance key-usage": lambda p: [],
    "compliance retention dry-run": lambda p: ["--org", str(p.organization_id)],
    "compliance bias-audit run": lambda p: ["--org", str(p.organization_id)],
}
#: Minutes of CPU: run in the slow test below (the pipeline with workers; a judge training).
SLOW = {"demo", "match", "matching train-judge"}
#: Needs the optional ``llm`` extra (never installed by the tests): run below without it.
NEEDS_LLM = {"matching teach"}


def json_commands() -> set[str]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    root = typer.main.get_command(app)
    return {
        name
        for name, command in walk(root, [])
        if any("--json" in getattr(param, "opts", ()) for param in command.params)
    }


def run_json(place: Place, command: str, args: list[str], timeout: float = 600) -> tuple[Any, str]:
    """Run ``are-workers COMMAND ARGS --json``; returns its one JSON document and stderr."""
    argv = [sys.executable, "-m", "are_workers.cli.main", *command.split(), *args, "--json"]
    out = subprocess.run(
        argv, env=place.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, f"{command}: exit {out.returncode}\n{out.stderr[-3000:]}"
    assert out.stdout.strip(), f"{command}: nothing on stdout\n{out.stderr[-3000:]}"
    try:
        document = json.loads(out.stdout)  # one document: anything else around it fails
    except json.JSONDecodeError as exc:
        pytest.fail(f"{command}: stdout is not exactly one JSON document ({exc}):\n{out.stdout}")
    return document, out.stderr


@pytest.fixture(scope="module")
def place(
    server_url: str, template_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Place]:
    name = f"are_cli_json_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name, template=TEMPLATE_DB)
    engine = create_engine(url)
    with engine.begin() as conn:
        org = conn.execute(
            text("INSERT INTO organizations (name, slug) VALUES ('Json', :s) RETURNING id"),
            {"s": f"json-{uuid.uuid4().hex[:8]}"},
        ).scalar_one()
        job = ledger.enqueue(conn, "system.noop", {}, organization_id=org)
    engine.dispose()
    data_dir = tmp_path_factory.mktemp("cli-json")
    redis = PrivateRedis(data_dir / "redis").start()
    env = worker_env(url, redis.url, data_dir, ARE_LOG_JSON="false")
    # Caches (the judge's vectors) are the test session's, so a second run is quick.
    env["ARE_STORAGE_DIR"] = str(data_dir / "storage")
    try:
        yield Place(env=env, data_dir=data_dir, organization_id=org, job_run_id=job)
    finally:
        redis.kill()
        drop_database(server_url, name)


def test_every_json_command_is_run_here() -> None:
    assert json_commands() == set(ARGUMENTS) | SLOW | NEEDS_LLM


def test_teach_without_the_llm_extra_says_how_to_install_it(place: Place) -> None:
    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("the llm extra is installed here: tests/unit/test_llm_judge.py -m llm")
    argv = [sys.executable, "-m", "are_workers.cli.main", "matching", "teach", "--limit", "0",
            "--json"]  # fmt: skip
    out = subprocess.run(argv, env=place.env, cwd=ROOT, capture_output=True, text=True,
                         timeout=600, check=False)  # fmt: skip
    assert out.returncode == 1, out.stderr[-3000:]
    assert out.stdout == ""  # no half document for a script to misread
    said = " ".join(out.stderr.split())  # the console wraps long lines
    assert "'llm' extra" in said and "pip install -c constraints.txt 'are-workers[llm]'" in said
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("command", sorted(ARGUMENTS))
def test_json_output_is_exactly_one_document(place: Place, command: str) -> None:
    run_json(place, command, ARGUMENTS[command](place))


def _small_labelled_set(root: Path) -> Path:
    """The matching eval set with two development postings (one per fold), so that a
    training takes a minute, not ten; the labels and resumes are the real ones."""
    source = ROOT / "eval" / "matching"
    root.mkdir()
    for entry in source.iterdir():
        if entry.name != "split.json":
            (root / entry.name).symlink_to(entry)
    split = json.loads((source / "split.json").read_text())
    split |= {"dev": ["nursing-p1", "software-p2"],
              "dev_folds": {"train": ["nursing"], "calibrate": ["software"]}}  # fmt: skip
    (root / "split.json").write_text(json.dumps(split))
    return root


@pytest.mark.slow
def test_train_judge_prints_one_document(place: Place) -> None:
    labelled = _small_labelled_set(place.data_dir / "eval")
    out = place.data_dir / "judge_model.json"
    # The vectors are cached under the data dir: the test session's, so a rerun is quick.
    session_data = replace(place, env=place.env | {"ARE_DATA_DIR": os.environ["ARE_DATA_DIR"]})
    report, _ = run_json(
        session_data,
        "matching train-judge",
        ["--eval", str(labelled), "--out", str(out), "--trees", "3"],
    )
    assert report["written"] == str(out) and out.exists()
    written = json.loads(out.read_text())  # the trees asked for, named in the version
    assert len(written["trees"]["leaf"]) == 3 and "-gbt3d" in written["version"]


@pytest.mark.slow
def test_demo_and_match_print_one_document_and_keep_worker_logs_off_stdout(place: Place) -> None:
    """The demo runs the whole pipeline with its own workers; ``match`` then re-ranks through
    a worker pool. Both print progress while they wait: it must not reach stdout."""
    demo, stderr = run_json(place, "demo", ["--top", "3"], timeout=1500)
    assert len(demo["shortlist"]) == 3
    assert "processing" in stderr  # the progress went to stderr
    log_file = place.data_dir / "logs" / "demo.log"
    assert "worker_child_started" in log_file.read_text()  # the workers' logs: in the file
    # The demo's data dir (its development keys decrypt what it stored); its own pool is gone.
    (place.data_dir / "run" / "worker.ready").unlink(missing_ok=True)
    pool = start_worker(place.env, queues="", threads=2)  # every queue, as the demo's pool
    try:
        matched, _ = run_json(place, "match", [demo["job_id"], "--top", "3"])
    finally:
        stop_worker(pool)
    assert matched["job_id"] == demo["job_id"] and isinstance(matched["shortlist"], list)


def test_tables_are_not_cut_when_stdout_is_not_a_terminal(place: Place) -> None:
    """A pipe gets whole ids and messages, however narrow a terminal would be."""
    message = "The input could not be read: " + "a long explanation, " * 12 + "the end."
    engine = create_engine(place.env["ARE_DATABASE_URL"])
    with engine.begin() as conn:
        failed = conn.execute(
            text(
                "INSERT INTO task_runs (actor, queue_class, args, status, error_message, "
                "finished_at) VALUES ('system.noop', 'default', '{}', 'failed', :m, now()) "
                "RETURNING id"
            ),
            {"m": message},
        ).scalar_one()
    engine.dispose()
    argv = [sys.executable, "-m", "are_workers.cli.main", "status"]
    env = place.env | {"COLUMNS": "60"}
    out = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert str(failed) in out.stdout and message in out.stdout, out.stdout
