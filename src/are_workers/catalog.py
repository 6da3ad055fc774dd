"""The catalogue of job kinds: actor name → queue and limits, as plain data.

Why plain data: the client (imported by upstream apps) must know where a job goes without
importing Dramatiq actors, torch or the broker; the actors in ``tasks/`` read their options
from the same entries, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``signing``: the jobs that hold the audit head-signing key, so that pool stays small.
QueueClass = Literal["default", "ml", "media", "compliance", "signing"]


@dataclass(frozen=True)
class JobKind:
    actor: str
    queue_class: QueueClass
    time_limit_s: int
    max_attempts: int = 6
    description: str = ""


_KINDS = [
    JobKind("system.noop", "default", 60, description="Does nothing; measures the queue."),
    JobKind("system.sleep", "default", 3600, description="Sleeps; a diagnostics job."),
    JobKind("system.handle_dead", "default", 300, description="A dead job's on_dead hook."),
    JobKind("resumes.process_file", "ml", 600, description="Extract, parse and embed a resume."),
    JobKind("resumes.process_candidate", "default", 120, description="Queue a candidate's files."),
    JobKind("matching.embed_job", "ml", 300, description="Embed a job posting and requirements."),
    JobKind("matching.match_job", "ml", 1800, description="Rank and evaluate candidates."),
    JobKind("media.transcribe_response", "media", 3600, description="Whisper a video answer."),
    JobKind("media.analyze_response", "media", 3600, description="Video and speech signals."),
    JobKind("media.proctor_snapshots", "media", 600, description="Proctoring events."),
    JobKind("assessments.start_session", "default", 60, description="Present the first item."),
    JobKind("assessments.score_response", "default", 60, description="Score an answer (CAT)."),
    JobKind("assessments.calibrate_items", "default", 3600, description="Re-estimate items."),
    JobKind("portfolios.evaluate", "ml", 1800, description="Deep-evaluate a portfolio."),
    JobKind("compliance.retention_sweep", "compliance", 3600, description="Retention."),
    JobKind("compliance.process_dsr", "compliance", 3600, description="Erasure or export."),
    JobKind("compliance.verify_audit_chain", "compliance", 3600, description="Audit chain."),
    JobKind("compliance.bias_audit", "compliance", 3600, description="Bias audit."),
    JobKind("compliance.rotate_keys", "compliance", 7200, description="Re-encrypt fields."),
    JobKind("compliance.seal_audit_chain", "compliance", 600, description="Seal audit rows."),
    JobKind(
        "compliance.maintain_audit_partitions",
        "signing",
        1800,
        description="Audit partitions; signs pruning records.",
    ),
    JobKind("compliance.export_audit_head", "signing", 300, description="Sign chain heads."),
    JobKind("compliance.expire_exports", "compliance", 600, description="Delete old exports."),
    JobKind("compliance.process_due_dsrs", "compliance", 300, description="Queue open DSRs."),
    JobKind(
        "compliance.retention_sweep_platform",
        "compliance",
        3600,
        description="Retention of the global tables.",
    ),
    # Index builds run in PostgreSQL; the worker only waits, so not on an ML pool.
    JobKind(
        "matching.sync_tenant_index",
        "default",
        3600,
        description="Build or drop a tenant's vector indexes.",
    ),
]

JOB_KINDS: dict[str, JobKind] = {kind.actor: kind for kind in _KINDS}


def queue_for(actor: str) -> str:
    """The queue a job of this kind goes to, per this process's settings."""
    from are_workers.config import get_settings
    from are_workers.errors import PermanentError

    kind = JOB_KINDS.get(actor)
    if kind is None:
        raise PermanentError(
            f"Unknown job type {actor!r}. Known types: {', '.join(sorted(JOB_KINDS))}.",
            code="unknown_actor",
        )
    return get_settings().queue_names[kind.queue_class]


def class_for(actor: str) -> QueueClass | None:
    """The queue class of a job kind (what enqueuers write on the ledger row)."""
    kind = JOB_KINDS.get(actor)
    return kind.queue_class if kind is not None else None
