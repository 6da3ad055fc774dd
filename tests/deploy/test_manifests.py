"""deploy/: every YAML file parses; each pool's KEDA scaler query counts the ready and
running jobs of its queue class on the real schema; grace periods cover the longest job."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from are_workers.catalog import JOB_KINDS
from are_workers.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
CLASSES = ("default", "ml", "media", "compliance", "signing")


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in _documents(path)]


def _named(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _k8s() if doc["kind"] == kind}


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _classes(queues: str, queue_ml: str) -> set[str]:
    """The queue classes a pool serves, from its --queues and the deployment's queue names."""
    names = Settings(queue_ml=queue_ml).queue_names
    by_queue = {queue: cls for cls, queue in names.items()}
    return {by_queue[q] for q in queues.split(",") if q in by_queue}


def _longest_time_limit(classes: set[str]) -> int:
    return max(kind.time_limit_s for kind in JOB_KINDS.values() if kind.queue_class in classes)


def _pools() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, Deployment, ScaledObject) for every pool of the Kubernetes manifests."""
    deployments = _named("Deployment")
    return [
        (name, deployments[scaled["spec"]["scaleTargetRef"]["name"]], scaled)
        for name, scaled in sorted(_named("ScaledObject").items())
    ]


def _worker_args(deployment: dict[str, Any]) -> list[str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]
    assert args[0] == "worker"
    return args


def _queue_ml() -> str:
    (config,) = [d for d in _named("ConfigMap").values() if d["metadata"]["name"] == "are-config"]
    return str(config["data"]["ARE_QUEUE_ML"])


# --- parsing ---------------------------------------------------------------------------------


def test_every_yaml_file_in_deploy_parses() -> None:
    paths = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert COMPOSE in paths and len(paths) >= 10
    for path in paths:
        documents = _documents(path)
        assert documents, path
        for doc in documents:
            assert isinstance(doc, dict), path
            if path.parent == K8S:
                assert {"apiVersion", "kind"} <= set(doc), path
                assert doc["kind"] == "Kustomization" or "name" in doc["metadata"], path


def test_the_kustomization_lists_every_manifest() -> None:
    (kustomization,) = _documents(K8S / "kustomization.yaml")
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


# --- Kubernetes --------------------------------------------------------------------------------


def test_every_queue_class_has_exactly_one_scaled_pool() -> None:
    served: list[str] = []
    for _, deployment, scaled in _pools():
        served += _classes(_option(_worker_args(deployment), "--queues"), _queue_ml())
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "postgresql"
        assert trigger["authenticationRef"]["name"] in _named("TriggerAuthentication")
        assert float(trigger["metadata"]["targetQueryValue"]) > 0
    assert sorted(served) == sorted(CLASSES)


def test_grace_periods_cover_the_longest_job_of_each_pool() -> None:
    for name, deployment, _ in _pools():
        args = _worker_args(deployment)
        longest = _longest_time_limit(_classes(_option(args, "--queues"), _queue_ml()))
        drain = float(_option(args, "--drain-seconds"))
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert drain >= longest, name
        assert grace >= drain + 30, name  # the supervisor drains before Kubernetes kills
        assert "--no-relay" in args, name  # the relay Deployment publishes for every pool


def test_the_signing_key_reaches_the_signing_pool_only() -> None:
    for name, deployment, _ in _pools():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        secrets = {ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref}
        signing = _classes(_option(container["args"], "--queues"), _queue_ml()) == {"signing"}
        assert ("are-signing" in secrets) == signing, name


# --- the scaler queries on the real schema ---------------------------------------------------

#: (status, due): which rows a pool's depth counts: ready (queued/retrying and due) + running.
STATES = [
    ("queued", True, True),
    ("queued", False, False),
    ("retrying", True, True),
    ("retrying", False, False),
    ("running", True, True),
    ("succeeded", True, False),
    ("failed", True, False),
    ("dead", True, False),
    ("cancelled", True, False),
]


def _seed(db: Session, queue_ml: str) -> dict[str, int]:
    """Rows of every class in every state (class i: i+1 rows per state); returns the
    expected depth per class."""
    names = Settings(queue_ml=queue_ml).queue_names
    expected = dict.fromkeys(CLASSES, 0)
    rows = []
    for i, cls in enumerate(CLASSES):
        for status, due, counted in STATES:
            for _ in range(i + 1):
                rows.append((cls, names[cls], status, due))
                expected[cls] += counted
    # Rows that name only a queue (written before queue classes): they count for the pool
    # that reads that queue, and a queue no pool reads counts for none.
    legacy = [("media", "queued", True), ("media", "running", True), (queue_ml, "queued", True),
              ("media", "queued", False), ("no-such-queue", "queued", True)]  # fmt: skip
    for queue, status, due in legacy:
        rows.append((None, queue, status, due))
    expected["media"] += 2
    expected["ml"] += 1
    for cls, queue, status, due in rows:
        db.execute(
            text(
                """INSERT INTO task_runs (id, actor, queue_class, queue, status, available_at)
                   VALUES (:id, 'system.noop', :cls, :queue, CAST(:status AS task_status),
                           now() + CASE WHEN :due THEN interval '-1 minute'
                                        ELSE interval '1 hour' END)"""
            ),
            {"id": uuid.uuid4(), "cls": cls, "queue": queue, "status": status, "due": due},
        )
    return expected


def _reader_role(db: Session) -> str:
    """The scaler's role as deploy/k8s/keda-reader.sql makes it (under a name of our own)."""
    role = f"are_keda_test_{uuid.uuid4().hex[:8]}"
    script = (K8S / "keda-reader.sql").read_text()
    statements = [s for s in re.sub(r"--[^\n]*", "", script).split(";") if s.strip()]
    assert len(statements) == 3
    for statement in statements:
        db.execute(text(statement.replace("are_keda", role)))
    return role


def test_each_scaler_query_returns_its_pools_ready_and_running_jobs(db: Session) -> None:
    queue_ml = _queue_ml()
    expected = _seed(db, queue_ml)
    role = _reader_role(db)
    db.execute(text(f"SET LOCAL ROLE {role}"))  # what KEDA connects as
    seen = {}
    for name, deployment, scaled in _pools():
        query = scaled["spec"]["triggers"][0]["metadata"]["query"]
        classes = _classes(_option(_worker_args(deployment), "--queues"), queue_ml)
        depth = db.execute(text(query)).scalar_one()
        assert isinstance(depth, int)
        assert depth == sum(expected[c] for c in classes), name
        seen[name] = depth
    assert len(set(seen.values())) == len(seen)  # each pool counted its own jobs
    with pytest.raises(ProgrammingError, match="permission denied"), db.begin_nested():
        db.execute(text("SELECT args FROM task_runs LIMIT 1"))  # the role reads no job data
    db.execute(text("RESET ROLE"))


def test_an_empty_ledger_scales_every_pool_to_its_minimum(db: Session) -> None:
    db.execute(text("DELETE FROM task_runs"))
    for name, _, scaled in _pools():
        depth = db.execute(text(scaled["spec"]["triggers"][0]["metadata"]["query"])).scalar_one()
        assert depth == 0, name


# --- Docker Compose ----------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    (compose,) = _documents(COMPOSE)
    return compose  # type: ignore[no-any-return]


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def test_compose_runs_the_whole_stack() -> None:
    services = _compose()["services"]
    assert "pgvector" in services["postgres"]["image"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["relay"]["command"] == ["relay"]
    assert services["scheduler"]["command"] == ["scheduler"]
    assert services["dashboard"]["command"][0] == "dashboard"
    assert {"pool-cpu", "pool-media", "pool-gpu", "pool-signing"} <= set(services)
    gpu = services["pool-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert {"BASE_IMAGE", "TORCH_INDEX"} <= set(gpu["build"]["args"])
    assert "cuda" in gpu["build"]["args"]["BASE_IMAGE"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and len(device["device_ids"]) == 1  # one per GPU
    # Every ARE process agrees on the queue names (the relay maps classes with them).
    queue_ml = {s["environment"]["ARE_QUEUE_ML"] for s in services.values()
                if "ARE_DATABASE_URL" in s.get("environment", {})}  # fmt: skip
    assert queue_ml == {"${ARE_QUEUE_ML:-ml-cpu}"}


def test_compose_pools_serve_every_class_and_drain_their_longest_job() -> None:
    served: set[str] = set()
    for name, service in _compose()["services"].items():
        command = service.get("command") or []
        if command[:1] != ["worker"]:
            continue
        queues = _option(command, "--queues")
        # The GPU pool reads ml-gpu, the queue of class ml when ARE_QUEUE_ML=ml-gpu.
        classes = _classes(queues, "ml-gpu" if "ml-gpu" in queues else "ml-cpu")
        served |= classes
        drain = float(_option(command, "--drain-seconds"))
        assert drain >= _longest_time_limit(classes), name
        assert _seconds(service["stop_grace_period"]) >= drain + 30, name
        assert "--no-relay" in command, name
    assert served == set(CLASSES)
