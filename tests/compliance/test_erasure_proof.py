"""The erasure proof that does not trust the registry: real files in, a worker erases, then
every textual column of every table, every stored file, the vectors and the blind index are
searched for the subject's markers.

Why not circular: the markers go in through the real pipelines (a resume whose name, email,
phone, address and body carry them; a portfolio archive with the marker in a member's path
and content, and one whose unsafe path the pipeline quotes in its error; a failed job whose
ledger message quotes a path), wherever those pipelines put them, whether or not the
registry calls the column personal. The scan reads ``information_schema`` for every text,
varchar, JSON and bytea column of every table (global ones such as ``task_runs`` and
``skills`` included) and reads every file under the storage directory, so a column or a
file nobody thought of is searched too.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from are_workers import crypto, ledger
from are_workers.config import get_settings
from are_workers.dev_keys import keys_dir
from are_workers.errors import InvalidInputError
from are_workers.models.deep_evaluations import Portfolio, PortfolioItem, PortfolioItemKind
from are_workers.models.files import File, FilePurpose, FileStatus
from are_workers.models.privacy import DataSubjectRequest, DsrKind, SubjectType
from are_workers.services import storage
from are_workers.services.embeddings import EmbeddingContext
from tests.factories import Graph, days, make_application, make_member, utcnow
from tests.media_db.conftest import record_answer
from tests.media_db.media import spoken
from tests.portfolios_db.conftest import make_tenant
from tests.procs import ROOT, PrivateRedis, stop_worker, wait_status, worker_env
from tests.schema.test_free_text import TEXTUAL

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


def _columns(db: Session) -> list[tuple[str, str, str]]:
    """``(table, column, data_type)`` of every textual column of every table (partitions
    are read through their parent)."""
    rows = db.execute(
        text(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN pg_class k ON k.oid = format('%I.%I', c.table_schema, c.table_name)::regclass "
            "WHERE c.table_schema = 'public' AND k.relkind IN ('r', 'p') "
            "AND NOT k.relispartition "
            "AND (c.data_type = ANY(:types) OR c.udt_name IN ('_text', '_varchar'))"
        ),
        {"types": list(TEXTUAL)},
    )
    return sorted((r.table_name, r.column_name, r.data_type) for r in rows)


def _decrypted(value: str, table: str, column: str) -> str:
    """An envelope's plaintext (one that does not decrypt fails the test); else the value."""
    if not value.startswith(crypto.ENVELOPE_PREFIX):
        return value
    return crypto.decrypt(value, table=table, column=column) or ""


def scan_columns(db: Session, needles: list[str]) -> tuple[dict[str, int], int]:
    """Hits per ``table.column`` for any needle (case-insensitive; envelopes decrypted), and
    how many columns were searched."""
    lowered = [n.lower() for n in needles]
    hits: dict[str, int] = {}
    columns = _columns(db)
    for table, column, data_type in columns:
        as_text = f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
        values = db.execute(
            text(f'SELECT {as_text} FROM "{table}" WHERE "{column}" IS NOT NULL')
        ).scalars()
        count = 0
        for value in values:
            plain = value.lower()
            if value.startswith(crypto.ENVELOPE_PREFIX):
                plain = _decrypted(value, table, column).lower()
            if any(n in plain for n in lowered):
                count += 1
        if count:
            hits[f"{table}.{column}"] = count
    return hits, len(columns)


def scan_files(root: Path, needles: list[bytes]) -> tuple[list[str], int]:
    """Files under ``root`` whose name or bytes hold a needle, and how many were read."""
    found, read = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        read += 1
        data = path.read_bytes().lower()
        if any(n in data or n in str(path).lower().encode() for n in needles):
            found.append(str(path.relative_to(root)))
    return found, read


def _store(db: Session, org_id: uuid.UUID, candidate_id: uuid.UUID, data: bytes, name: str,
           purpose: FilePurpose) -> File:  # fmt: skip
    key = f"{org_id}/{uuid.uuid4()}"
    storage.write_bytes(key, data, org_id)
    file = File(
        organization_id=org_id, candidate_id=candidate_id, storage_key=key,
        original_filename=name, purpose=purpose, size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), status=FileStatus.UPLOADED,
    )  # fmt: skip
    db.add(file)
    db.flush()
    return file


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _tar_with_absolute_path(path: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(path)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


SPOKEN = ("lighthouse", "zanzibar", "pineapple")
"""Words read into the recording; whichever the transcriber hears are searched for."""


def _wait_idle(engine: Engine, organization_id: uuid.UUID, timeout: float = 420) -> list[Any]:
    """Wait until no job of the organization is queued or running (follow-ups included)."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT actor, status::text AS status, error_message FROM task_runs "
                     "WHERE organization_id = :o"), {"o": organization_id},
            ).all()  # fmt: skip
        busy = [r for r in rows if r.status not in {"succeeded", "failed", "dead", "cancelled"}]
        if not busy:
            return rows
        assert time.monotonic() < deadline, f"still busy: {busy}"
        time.sleep(1)


def _near(db: Session, organization_id: uuid.UUID, probes: list[list[float]]) -> int:
    """How many probes have a near-identical stored vector (cosine distance < 0.01)."""
    return sum(
        bool(db.execute(
            text("SELECT count(*) FROM embeddings WHERE organization_id = :o "
                 "AND embedding <=> CAST(:v AS vector) < 0.01"),
            {"o": organization_id, "v": str(probe)},
        ).scalar_one())
        for probe in probes
    )  # fmt: skip


def _by_email(db: Session, email: str) -> int:
    """Candidates found by the blind index of ``email`` (in any organization)."""
    return int(
        db.execute(
            text("SELECT count(*) FROM candidates WHERE email_blind_index = :b"),
            {"b": crypto.blind_index(email)},
        ).scalar_one()
    )


def test_a_worker_erases_every_trace_of_markers_that_entered_through_real_files(
    owner_engine: Engine,
    runtime_url: str,
    storage_dir: Path,
    tmp_path: Path,
    embedding: EmbeddingContext,
) -> None:
    marker = "qz" + uuid.uuid4().hex[:10]  # letters and digits no text holds by chance
    surname = marker.capitalize()
    email = f"vesna.{marker}@example.com"
    phone = "+49 30 5550 1234"
    resume = (
        f"Vesna {surname}\n"
        f"{email} | {phone} | Hauptstraße 12, 10115 Berlin | linkedin.com/in/{marker}\n\n"
        "SUMMARY\n"
        f"Backend engineer; maintainer of the {marker} ledger library.\n\n"
        "EXPERIENCE\n"
        "Senior Backend Engineer, Acme Payments GmbH, 01/2019 - 03/2023\n"
        f"Built Python and PostgreSQL services on Kubernetes for the {marker} ledger.\n\n"
        "SKILLS\n"
        "Python, PostgreSQL, Kubernetes, Docker\n"
    )
    recording = spoken(
        f"My reference words are {', '.join(SPOKEN)}. I led the ledger team for four years.",
        "en-us",
        tmp_path / "answer.mp4",
    )
    with Session(owner_engine) as db:
        tenant = make_tenant(db)
        org, candidate = tenant.org, tenant.candidate
        candidate.full_name = f"Vesna {surname}"
        candidate.email_blind_index = crypto.blind_index(email)
        # (a) a resume whose name, file name, email, phone, address, link and body carry it
        resume_file = _store(db, org.id, candidate.id, resume.encode(), f"{surname}_CV.txt",
                             FilePurpose.RESUME)  # fmt: skip
        # a portfolio: an archive with the marker in members' paths and content, and one
        # whose unsafe path the pipeline quotes in the item's error message
        portfolio = Portfolio(organization_id=org.id, candidate_id=candidate.id,
                              title="Work samples")  # fmt: skip
        db.add(portfolio)
        db.flush()
        code = _zip({
            f"{marker}_ledger/README.md": f"# {marker} ledger\nDouble-entry ledger in Python.\n",
            f"{marker}_ledger/{marker}/ledger.py": (
                f'"""The {marker} ledger."""\n\n\ndef post(entries):\n'
                "    return sum(e.amount for e in entries) == 0\n"
            ),
        })  # fmt: skip
        unsafe = _tar_with_absolute_path(f"/home/{marker}/notes.txt", b"private notes\n")
        for position, (data, name) in enumerate(
            ((code, f"{marker}_ledger.zip"), (unsafe, f"{marker}_backup.tar"))
        ):
            file = _store(db, org.id, candidate.id, data, name, FilePurpose.PORTFOLIO)
            db.add(PortfolioItem(organization_id=org.id, portfolio_id=portfolio.id,
                                 position=position, kind=PortfolioItemKind.CODE_ARCHIVE,
                                 file_id=file.id))  # fmt: skip
        # an interview answer with the words spoken
        application = make_application(db, candidate, tenant.job)
        graph = Graph(org, make_member(db, org), tenant.job, candidate, resume_file,
                      None, application)  # type: ignore[arg-type]  # fmt: skip
        answer = record_answer(db, recording, graph=graph)
        db.flush()
        jobs = [
            ledger.enqueue(db, actor, args, organization_id=org.id)
            for actor, args in (
                ("resumes.process_file", {"file_id": str(resume_file.id)}),
                ("portfolios.evaluate",
                 {"portfolio_id": str(portfolio.id), "job_id": str(tenant.job.id)}),
                ("media.transcribe_response", {"response_id": str(answer.response.id)}),
            )
        ]  # fmt: skip
        # A failed job whose ledger message quotes a path, as the middleware records it.
        failed = ledger.enqueue(
            db, "portfolios.evaluate",
            {"portfolio_id": str(portfolio.id), "job_id": str(tenant.job.id)},
            organization_id=org.id, idempotency_key=f"proof:{portfolio.id}",
        )  # fmt: skip
        ledger.fail_unclaimed(db, failed, error=InvalidInputError(
            f"This archive contains an absolute path ('/home/{marker}/notes.txt')."
        ))  # fmt: skip
        org_id, candidate_id = org.id, candidate.id
        recording_key = answer.file.storage_key
        db.commit()

    # The worker encrypts and indexes with this installation's keys, so the scan can read
    # what it wrote (development keys live in the data dir).
    shutil.copytree(keys_dir(get_settings()), tmp_path / "data" / "keys")
    redis = PrivateRedis(tmp_path / "redis").start()
    env = worker_env(
        runtime_url, redis.url, tmp_path / "data",
        ARE_STORAGE_DIR=str(storage_dir), ARE_ERASURE_JOURNAL_DIR=str(tmp_path / "journal"),
    )  # fmt: skip
    log = tmp_path / "worker.log"
    queues = ",".join(get_settings().queue_names[c] for c in ("ml", "media", "compliance"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "are_workers.cli.main", "worker", "--queues", queues,
         "--processes", "1", "--threads", "2"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    try:
        for job in jobs:
            row = wait_status(owner_engine, job, {"succeeded", "failed", "dead"}, timeout=300)
            assert row.status == "succeeded", (row.error_message, log.read_text()[-3000:])
        _wait_idle(owner_engine, org_id)
        with Session(owner_engine) as db:
            stored = db.execute(
                text("SELECT raw_text, sections::text AS sections FROM parsed_resumes "
                     "WHERE candidate_id = :c"), {"c": candidate_id},
            ).one()  # fmt: skip
            heard = db.execute(
                text("SELECT lower(text) FROM transcripts WHERE organization_id = :o"),
                {"o": org_id},
            ).scalar_one()  # fmt: skip
        # Contact details never reached the stored text; the work history did.
        for contact in (email, phone, "Hauptstraße 12", f"linkedin.com/in/{marker}"):
            assert contact not in stored.raw_text and contact not in stored.sections
        assert len(stored.raw_text) == len(resume.strip())
        assert f"the {marker} ledger" in stored.raw_text
        spoken_words = [word for word in SPOKEN if word in heard]
        assert spoken_words, heard
        needles = [marker, email, "5550 1234", *spoken_words]
        with Session(owner_engine) as db:
            before, _ = scan_columns(db, needles)
            chunks = db.execute(
                text("SELECT chunk_text FROM embeddings WHERE organization_id = :o "
                     "AND chunk_text ILIKE :m"), {"o": org_id, "m": f"%{marker}%"},
            ).scalars().all()  # fmt: skip
            # The stored text re-embedded with the same model lands on its stored vector.
            probes = [v.tolist() for v in embedding.embed(chunks)]
            assert probes and _near(db, org_id, probes) == len(probes)
            assert _by_email(db, email) == 1  # the lookup works before the erasure
        files_before, files_read_before = scan_files(storage_dir, [n.encode() for n in needles])
        # The markers are where the pipelines put them, personal or not in the registry's eyes.
        assert {
            "candidates.phone", "parsed_resumes.raw_text", "files.original_filename",
            "portfolio_items.error_message", "task_runs.error_message", "embeddings.chunk_text",
            "candidates.full_name",
            "transcripts.text", "deep_evaluation_findings.evidence_locator",
        } <= set(before), before  # fmt: skip
        assert len(files_before) == 3  # the resume and the two archives (the recording: sound)

        # (b) the erasure, by the real actor in the worker process (the runtime role)
        with Session(owner_engine) as db:
            dsr = DataSubjectRequest(
                organization_id=org_id, kind=DsrKind.ERASURE,
                subject_type=SubjectType.CANDIDATE, candidate_id=candidate_id,
                subject_ref=crypto.subject_ref(candidate_id), deadline_at=utcnow() + days(30),
            )  # fmt: skip
            db.add(dsr)
            db.flush()
            erase = ledger.enqueue(
                db, "compliance.process_dsr", {"request_id": str(dsr.id)},
                organization_id=org_id, idempotency_key=f"dsr:{dsr.id}",
            )  # fmt: skip
            db.commit()
        row = wait_status(owner_engine, erase, {"succeeded", "failed", "dead"}, timeout=180)
        assert row.status == "succeeded", (row.error_message, log.read_text()[-3000:])
    finally:
        assert stop_worker(worker) == 0, log.read_text()[-3000:]
        redis.kill()

    # (c) every textual column of every table, every stored file, the vectors, the index
    with Session(owner_engine) as db:
        after, covered = scan_columns(db, needles)
        near = _near(db, org_id, probes)
        vectors_left = db.execute(
            text("SELECT count(*) FROM embeddings WHERE organization_id = :o "
                 "AND candidate_id = :c"), {"o": org_id, "c": candidate_id},
        ).scalar_one()  # fmt: skip
        by_email = _by_email(db, email)
    files_after, files_read = scan_files(storage_dir, [n.encode() for n in needles])
    report = {
        "columns_covered": covered, "column_hits": after, "columns_with_markers_before":
        sorted(before), "files_read_before": files_read_before, "files_read_after": files_read,
        "file_hits": files_after, "near_vectors": near, "subject_vectors": vectors_left,
        "blind_index_hits": by_email, "needles": len(needles), "vector_probes": len(probes),
    }  # fmt: skip
    print(f"\nerasure proof: {report}")
    assert covered >= 240 and files_read_before >= 4
    assert after == {}
    assert files_after == []
    assert storage.existing([recording_key], org_id) == []  # the recording went too
    assert near == 0 and vectors_left == 0 and by_email == 0
