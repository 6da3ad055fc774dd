"""The resume → shortlist commands: ``resume parse``, ``ingest resumes``, ``match``, ``demo``.

Why the demo runs real workers: it is the product's main job on the embedded defaults, so it
goes through the same path production does — ledger rows, the relay, Redis, a supervised
worker pool — and the recruiter-facing output is read back from the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from are_workers.cli.output import (
    cell_limits,
    cli_settings,
    console,
    err_console,
    friendly_errors,
    json_output_mode,
    print_json,
)

resume_app = typer.Typer(help="Resume tools that need no database.")
ingest_app = typer.Typer(help="Bulk ingestion.")

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
RESUME_SUFFIXES = {".pdf", ".docx", ".txt", ".md", ".rtf"}


@resume_app.command("parse")
def resume_parse(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Extract and parse one resume file locally (no database): sections, skills, experience."""
    from are_workers.config import get_settings
    from are_workers.services.documents import ExtractionLimits, extract_file
    from are_workers.services.resumes.parsing import parse_resume

    with friendly_errors():
        extracted = extract_file(file, limits=ExtractionLimits.from_settings(get_settings()))
        parsed = parse_resume(extracted.text, language=extracted.language)
    data = parsed.to_dict() | {
        "document_type": extracted.document_type.value,
        "pages": extracted.page_count,
        "characters": extracted.char_count,
        "warnings": list(extracted.warnings),
    }
    if json_output:
        print_json(data)
        return
    console.print(f"[bold]{file.name}[/]  {data['document_type']}, language {data['language']}, "
                  f"{data['characters']} characters")  # fmt: skip
    console.print("Sections: " + ", ".join(s["name"] for s in data["sections"]))
    console.print("Skills: " + (", ".join(data["skills"]) or "none found"))
    console.print("Evidenced in work history: " + (", ".join(data["evidenced_skills"]) or "none"))
    console.print(f"Experience: {data['years_of_experience']} years")
    for period in data["employment_periods"]:
        console.print(f"  {period['start']} → {period['end'] or 'present'}  {period['line']}")
    for entry in data["education"]:
        console.print(f"  education: {entry['degree'] or ''} {entry['institution'] or ''} "
                      f"{entry['year'] or ''}")  # fmt: skip


# --- database-backed commands ---------------------------------------------------------------


def _organization(session: Any, org: str) -> uuid.UUID:
    """An organization by id or slug; a new slug creates the organization."""
    from sqlalchemy import select

    from are_workers.models.organizations import Organization

    try:
        found = session.get(Organization, uuid.UUID(org))
        if found is None:
            raise typer.BadParameter(f"No organization with id {org}")
        return found.id
    except ValueError:
        pass
    existing = session.scalar(select(Organization.id).where(Organization.slug == org))
    if existing:
        return existing
    created = Organization(name=org.replace("-", " ").title(), slug=org)
    session.add(created)
    session.flush()
    console.print(f"created organization [bold]{org}[/] ({created.id})")
    return created.id


def _stage_resume(session: Any, org_id: uuid.UUID, path: Path, *, consent: bool) -> uuid.UUID:
    """What the ATS does on upload: a candidate, the stored file, and (optionally) consent."""
    from sqlalchemy import func

    from are_workers.models.candidates import (
        Candidate,
        CandidateConsent,
        ConsentPurpose,
        ConsentSource,
        ConsentStatus,
    )
    from are_workers.models.files import File, FilePurpose, FileStatus
    from are_workers.services import storage

    data = path.read_bytes()
    candidate = Candidate(organization_id=org_id, full_name=path.stem.replace("_", " ").title())
    session.add(candidate)
    session.flush()
    key = storage.new_key(org_id, f"{uuid.uuid4()}{path.suffix.lower()}")
    storage.write_bytes(key, data, org_id)
    file = File(organization_id=org_id, candidate_id=candidate.id, storage_key=key,
                original_filename=path.name, purpose=FilePurpose.RESUME, size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(), status=FileStatus.UPLOADED)  # fmt: skip
    session.add(file)
    if consent:
        session.add(CandidateConsent(
            organization_id=org_id, candidate_id=candidate.id,
            purpose=ConsentPurpose.AI_EVALUATION, status=ConsentStatus.GRANTED,
            source=ConsentSource.APPLICATION_FORM, policy_version="demo", granted_at=func.now(),
        ))  # fmt: skip
    session.flush()
    return file.id


def _wait_with_progress(job_ids: list[uuid.UUID], label: str, timeout: float) -> list[Any]:
    from are_workers import ledger
    from are_workers.models.engine import get_engine

    terminal = {"succeeded", "failed", "dead", "cancelled"}
    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(label, total=len(job_ids))
        while True:
            with get_engine().connect() as conn:
                views = [ledger.get_job(conn, j) for j in job_ids]
            done = sum(v is not None and v.status in terminal for v in views)
            progress.update(task, completed=done)
            if done == len(job_ids):
                return views
            if time.monotonic() > deadline:
                console.print(f"[red]timed out after {timeout:.0f}s[/]; see `are-workers status`")
                raise typer.Exit(1)
            time.sleep(0.3)


def ingest_resumes_into(
    directory: Path, org: str, *, consent: bool, job_markdown: Path | None
) -> tuple[uuid.UUID, list[uuid.UUID], uuid.UUID | None]:
    from are_workers import client
    from are_workers.models.engine import session_scope
    from are_workers.services.matching.postings import create_job, parse_job_markdown

    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in RESUME_SUFFIXES)
    if not files:
        raise typer.BadParameter(
            f"no resumes ({', '.join(sorted(RESUME_SUFFIXES))}) in {directory}"
        )
    with session_scope() as session:
        org_id = _organization(session, org)
        jobs = []
        for path in files:
            file_id = _stage_resume(session, org_id, path, consent=consent)
            jobs.append(
                client.process_resume_file(session, organization_id=org_id, file_id=file_id)
            )
        job_id = None
        if job_markdown is not None:
            job_id = create_job(session, org_id, parse_job_markdown(job_markdown.read_text())).id
    return org_id, jobs, job_id


@ingest_app.command("resumes")
def ingest_resumes(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    org: Annotated[str, typer.Option(help="Organization id or slug (a new slug is created).")],
    job: Annotated[Path | None, typer.Option(help="A job posting in Markdown to create.")] = None,
    consent: Annotated[
        bool, typer.Option(help="Record AI-evaluation consent (demo data).")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the workers, with a progress bar.")] = True,
    timeout: float = 1800.0,
) -> None:
    """Upload every resume in DIR for ORG and queue its processing (workers do the rest)."""

    cli_settings()
    with friendly_errors():
        org_id, jobs, job_id = ingest_resumes_into(directory, org, consent=consent,
                                                   job_markdown=job)  # fmt: skip
    console.print(f"queued {len(jobs)} resume(s) for organization {org_id}")
    if job_id:
        console.print(f"created job {job_id}; run `are-workers match {job_id}` once processed")
    if wait:
        views = _wait_with_progress(jobs, "processing resumes", timeout)
        failed = [v for v in views if v.status != "succeeded"]
        for view in failed:
            console.print(
                f"[yellow]{view.status}[/] {view.args.get('file_id')}: {view.error_message}"
            )


def _run_match(org_id: uuid.UUID, job_id: uuid.UUID, top: int, timeout: float) -> Any:
    from are_workers import client
    from are_workers.models.engine import session_scope

    with session_scope() as session:
        ledger_id = client.match_job(session, organization_id=org_id, job_id=job_id, top_k=top)
    return _wait_with_progress([ledger_id], "ranking and explaining", timeout)[0]


def shortlist(job_id: uuid.UUID, top: int) -> dict[str, Any]:
    """The stored, ranked shortlist with its evidence (read back from the database)."""
    from sqlalchemy import Uuid, cast, or_, select

    from are_workers.models.ai_evaluations import AIEvaluation, EvaluationCriterionScore
    from are_workers.models.candidates import Candidate
    from are_workers.models.embeddings import MatchResult
    from are_workers.models.engine import session_scope
    from are_workers.models.jobs import JobPosting, JobRequirement

    with session_scope() as session:
        job = session.get_one(JobPosting, job_id)
        rows = session.execute(
            select(MatchResult.rank, Candidate.id, Candidate.full_name, AIEvaluation)
            .join(Candidate, Candidate.id == MatchResult.candidate_id)
            # The evaluation the rank was computed from (a re-run with unchanged inputs
            # keeps an earlier job's evaluation); rows from before that was recorded match
            # by job.
            .join(AIEvaluation, (AIEvaluation.candidate_id == MatchResult.candidate_id)
                  & (AIEvaluation.job_id == MatchResult.job_id)
                  & or_(AIEvaluation.id == cast(MatchResult.details["evaluation_id"].astext,
                                                 Uuid),
                        AIEvaluation.task_run_id == MatchResult.task_run_id))
            .where(MatchResult.job_id == job_id)
            .order_by(MatchResult.rank).limit(top)
        ).all()  # fmt: skip
        requirements = {r.id: r for r in session.scalars(
            select(JobRequirement).where(JobRequirement.job_id == job_id))}  # fmt: skip
        out: list[dict[str, Any]] = []
        for rank, candidate_id, name, evaluation in rows:
            scores = session.scalars(
                select(EvaluationCriterionScore)
                .where(EvaluationCriterionScore.evaluation_id == evaluation.id)
                .order_by(EvaluationCriterionScore.criterion_key)
            ).all()
            judged = (evaluation.output or {}).get("judge") or {}
            # The judge's band per requirement (rows stored before it had one: met or not).
            bands = {r.get("key"): r.get("verdict") for r in judged.get("requirements") or []}
            out.append({
                "rank": rank, "candidate_id": str(candidate_id), "name": name,
                "overall": evaluation.overall_score, "status": evaluation.status.value,
                "must_have_coverage": (evaluation.output or {}).get("must_have_coverage"),
                "summary": evaluation.summary,
                "model": judged.get("model"),
                "evaluator": (evaluation.output or {}).get("evaluator"),
                "requirements": [{
                    "requirement": requirements[s.requirement_id].text
                    if s.requirement_id in requirements else s.criterion_key,
                    "must_have": bool(s.requirement_id in requirements
                                      and requirements[s.requirement_id].must_have),
                    "probability": round(s.score, 4), "score": round(s.score, 2),
                    "met": s.met, "verdict": bands.get(s.criterion_key)
                    or ("met" if s.met else "not_met"),
                    "evidence": s.evidence_text,
                    "evidence_start": s.evidence_char_start, "evidence_end": s.evidence_char_end,
                    "evidence_supports": s.met, "why": s.rationale,
                } for s in scores],
            })  # fmt: skip
        # The order shown is the order of the score shown (ties: the stored rank).
        out.sort(key=_shown_order)
        return {"job_id": str(job_id), "title": job.title, "shortlist": out}


def _shown_order(entry: dict[str, Any]) -> tuple[float, int]:
    return (-float(entry["overall"] or 0.0), int(entry["rank"]))


def print_shortlist(data: dict[str, Any]) -> None:
    console.print(Panel.fit(f"[bold]{data['title']}[/] — ranked shortlist (flags for human "
                            "review; never an automatic rejection)"))  # fmt: skip
    for entry in data["shortlist"]:
        flag = (
            "[yellow]review must-haves[/]" if entry["status"] == "needs_review" else "[green]ok[/]"
        )
        console.print(f"\n[bold]#{entry['rank']} {entry['name']}[/]  overall "
                      f"[bold]{entry['overall']:.0f}[/]/100  {flag}")  # fmt: skip
        table = Table(box=None, show_header=False, padding=(0, 1))
        table.add_column("requirement", **cell_limits(40))
        table.add_column("P(met)", justify="right")
        table.add_column("evidence", **cell_limits(80))
        for req in entry["requirements"]:
            band = req["verdict"]
            mark = {"met": "[green]✔[/]", "uncertain": "[yellow]?[/]"}.get(band, "[red]✘[/]")
            must = "*" if req["must_have"] else " "
            # A quote may span a wrapped line: one line in the table (the JSON keeps it
            # verbatim, with its offsets).
            evidence = " ".join((req["evidence"] or "").split())
            if evidence and req["met"]:
                quote = f"“{evidence}”"
            elif evidence and band == "uncertain":
                quote = f"[dim]uncertain, read it: “{evidence}”[/]"
            elif evidence:
                quote = f"[dim]closest, not evidence: “{evidence}”[/]"
            else:
                quote = "[dim]no supporting passage[/]"
            table.add_row(f"{must}{mark} {req['requirement']}", f"{req['score']:.2f}", quote)
        console.print(table)
    console.print(
        "\n[dim]* must-have. ? uncertain: not met, but the quoted line reads as evidence "
        "on its own (above 0.3), or shows the work for too few years; a person should read it.[/]"
    )
    console.print("[dim]Evidence is quoted from the stored resume text; the full "
                  "rationale is in ai_evaluations / evaluation_criteria_scores.[/]")  # fmt: skip


def match_command(
    job_id: Annotated[str, typer.Argument(help="Job posting id.")],
    top: Annotated[int, typer.Option(min=1, max=200)] = 10,
    json_output: Annotated[bool, typer.Option("--json")] = False,
    timeout: float = 1800.0,
) -> None:
    """Rank and explain candidates for a job (through the workers) and print the shortlist."""
    from are_workers.models.engine import session_scope
    from are_workers.models.jobs import JobPosting

    json_output_mode(json_output)
    cli_settings()
    with session_scope() as session:
        job = session.get(JobPosting, uuid.UUID(job_id))
        if job is None:
            raise typer.BadParameter(f"no job {job_id}")
        org_id = job.organization_id
    view = _run_match(org_id, uuid.UUID(job_id), top, timeout)
    if view.status != "succeeded":
        console.print(f"[red]matching {view.status}[/]: {view.error_message}")
        raise typer.Exit(1)
    data = shortlist(uuid.UUID(job_id), top)
    if json_output:
        print_json(data)
    else:
        print_shortlist(data)


def demo_command(
    top: Annotated[int, typer.Option(min=1, max=50)] = 5,
    processes: Annotated[int, typer.Option(min=1)] = 1,
    threads: Annotated[int, typer.Option(min=1)] = 4,
    job: Annotated[
        str, typer.Option(help="Sample job: backend_engineer, registered_nurse, data_analyst")
    ] = "backend_engineer",
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The main job on the embedded defaults: sample resumes → workers → explained shortlist.

    The workers' log lines go to a file (``ARE_LOG_FILE``, else ``<data dir>/logs/demo.log``)
    so that they do not interleave with the demo's own output."""
    from are_workers.logs import configure_logging
    from are_workers.supervisor import Supervisor, health_file

    json_output_mode(json_output)
    settings = cli_settings()
    log_file = settings.log_file or settings.data_dir / "logs" / "demo.log"
    os.environ["ARE_LOG_FILE"] = str(log_file)  # the worker children inherit it
    configure_logging(settings.log_level, json=settings.log_json, file=log_file)
    job_path = SAMPLES / "jobs" / f"{job}.md"
    if not job_path.exists():
        raise typer.BadParameter(f"no sample job {job!r}")
    org = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    intro = (
        "ARE Workers demo: a recruiter posts a job, ~20 resumes arrive, the workers turn them "
        "into a ranked, explained shortlist.\nSample candidates are recorded as having "
        "consented to AI evaluation."
    )
    console.print(Panel.fit(intro))
    console.print(f"[dim]worker logs: {log_file}[/]")
    supervisor = Supervisor(settings, queues=settings.all_queues, processes=processes,
                            threads=threads)  # fmt: skip
    runner = threading.Thread(target=supervisor.run, name="demo-workers", daemon=True)
    runner.start()
    try:
        with console.status("starting workers (loading the embedding model)…"):
            deadline = time.monotonic() + 300
            while not health_file(settings).exists():
                if time.monotonic() > deadline or not runner.is_alive():
                    console.print("[red]the workers did not become ready; see the log above[/]")
                    raise typer.Exit(1)
                time.sleep(0.2)
        with friendly_errors():
            org_id, jobs, job_id = ingest_resumes_into(SAMPLES / "resumes", org, consent=True,
                                                       job_markdown=job_path)  # fmt: skip
        assert job_id is not None
        started = time.perf_counter()
        views = _wait_with_progress(jobs, f"processing {len(jobs)} resumes", 1800)
        elapsed = time.perf_counter() - started
        ok = sum(v.status == "succeeded" for v in views)
        console.print(f"{ok}/{len(jobs)} resumes processed in {elapsed:.1f}s "
                      f"({len(jobs) / elapsed:.2f} files/s)")  # fmt: skip
        view = _run_match(org_id, job_id, top, 1800)
        if view.status != "succeeded":
            console.print(f"[red]matching {view.status}[/]: {view.error_message}")
            raise typer.Exit(1)
        data = shortlist(job_id, top)
        if json_output:
            print_json(data)
        else:
            print_shortlist(data)
            console.print(f"\norganization {org} ({org_id}), job {job_id}. Re-run the ranking "
                          f"with `are-workers match {job_id}`.")  # fmt: skip
    finally:
        supervisor.stopping.set()
        runner.join(timeout=120)


embeddings_app = typer.Typer(help="Embedding models: backfill a new model, then activate it.")


@embeddings_app.command("backfill")
def embeddings_backfill(
    model_path: Annotated[
        Path,
        typer.Option(exists=True, file_okay=False, help="Local sentence-transformers model dir."),
    ],
    org: Annotated[str | None, typer.Option(help="Only this organization (id).")] = None,
    activate: Annotated[bool, typer.Option(help="Make it the default when done.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
) -> None:
    """Re-embed every stored chunk with another model; the current one keeps serving."""
    from are_workers.models.engine import session_factory
    from are_workers.services.embeddings import default_embedding_context
    from are_workers.services.matching.backfill import activate_model, backfill

    settings = cli_settings().model_copy(update={"embedding_model_path": model_path})
    target = default_embedding_context(settings)
    columns = (TextColumn("backfilling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with friendly_errors(), session_factory()() as session, Progress(*columns) as progress:
        task = progress.add_task("backfill", total=None)
        report = backfill(
            session, target=target, batch_size=batch_size,
            organization_id=uuid.UUID(org) if org else None,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip
        if activate:
            activate_model(session, report.target_model_id)
            session.commit()
    console.print(f"model {target.name}@{target.version} ({report.target_model_id}): "
                  f"{report.rows} chunks, {report.embedded} embedded, {report.skipped} already "
                  f"current{'; now the default' if activate else ''}")  # fmt: skip


matching_app = typer.Typer(
    help="The evidence judge: train it from a labelled set; label pairs with the LLM teacher."
)


@matching_app.command("train-judge")
def train_judge_command(
    eval_dir: Annotated[Path, typer.Option("--eval", help="A labelled set (SPEC.md).")] = Path(
        "eval/matching"
    ),
    out: Annotated[Path, typer.Option(help="Where the coefficients go.")] = Path(
        "src/are_workers/data/judge_model.json"
    ),
    trees: Annotated[
        int,
        typer.Option(
            min=0,
            max=300,
            help="Boosted trees on top of the logistic scorer (0: none, the default; 100 "
            "measured: more requirements found, worse ranking, docs/benchmarks.md).",
        ),
    ] = 0,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fit the judge on the set's development postings only (never its test postings), with
    a fixed seed; write the coefficients (a small JSON file) and print the training report.
    Vectors are cached in the data dir, so a second run takes seconds."""
    from are_workers.services.matching.judge_training import (
        cached_encoders,
        train_from_eval_set,
    )

    settings = cli_settings()
    with friendly_errors():
        encoder, english = cached_encoders(settings.data_dir / "cache")
        err_console.print(f"training on the development postings of {eval_dir} …")
        model, report, _ = train_from_eval_set(
            eval_dir, encoder=encoder, encode_aux=english.passages, boost_rounds=trees
        )
        out.write_text(model.to_text())
    if json_output:
        print_json(report | {"written": str(out)})
    else:
        console.print(
            f"wrote {out}: out-of-fold ECE {report['out_of_fold_ece']}, rank_alpha "
            f"{report['rank_alpha']}, rank_power {report['rank_power']}, "
            f"{report['requirements']} requirements"
        )


@matching_app.command("teach")
def teach_command(
    eval_dir: Annotated[Path, typer.Option("--eval", help="A labelled set (SPEC.md).")] = Path(
        "eval/matching"
    ),
    out: Annotated[
        Path | None, typer.Option(help="The labels file (<eval>/teacher/dev-labels.jsonl).")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Label the first N pairs of the fixed-seed order.")
    ] = 200,
    per_requirement: Annotated[
        int, typer.Option(min=1, help="Candidate passages per (resume, requirement).")
    ] = 2,
    posting: Annotated[
        list[str] | None,
        typer.Option(help="Only this development posting (repeatable; default: all of them)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Label development pairs with the LLM teacher (the 'llm' extra) and compare it with the
    pair scorer against the human labels. Only the set's development postings are read
    (never its test postings); pairs already in the labels file are not judged again."""
    from are_workers.ml.llm_judge import get_judge
    from are_workers.services.matching import teacher
    from are_workers.services.matching.judge_training import cached_encoders

    json_output_mode(json_output)
    settings = cli_settings()
    path = out or eval_dir / teacher.LABELS_PATH
    try:
        teacher.development_postings(eval_dir, posting or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--posting") from None
    with friendly_errors():
        llm = get_judge(settings)
        encoder, english = cached_encoders(settings.data_dir / "cache")
        err_console.print(f"reading the development postings of {eval_dir} …")
        pairs = teacher.dev_pairs(
            eval_dir, encoder=encoder, encode_aux=english.passages,
            per_requirement=per_requirement, only=posting or (),
        )  # fmt: skip
        already = teacher.read_labels(path)
        todo = sum(pair.key not in already for pair in pairs[:limit])
        seconds: list[float] = []
        columns = (TextColumn("teaching"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=err_console) as progress:
            task = progress.add_task("teach", total=todo)
            try:
                for _, _, took in teacher.label(
                    pairs, path, llm.p_yes, model=llm.info.key, limit=limit
                ):
                    seconds.append(took)
                    progress.advance(task)
            except KeyboardInterrupt:  # stopped by hand: what was labelled is kept and measured
                err_console.print("interrupted; measuring what was labelled")
        report = teacher.compare(pairs, path) | {
            "postings": sorted({pair.posting for pair in pairs}),
            "model": llm.info.key,
            "threads": settings.llm_threads,
            "labelled_now": len(seconds),
            "seconds_per_pair": round(sum(seconds) / len(seconds), 3) if seconds else None,
            "candidate_pairs": len(pairs),
            "written": str(path),
        }
    if json_output:
        print_json(report)
    else:
        console.print(
            f"{report['pairs']} pairs labelled in {path} ({report.get('positives')} supported): "
            f"teacher AUC {report.get('teacher_auc')}, pair scorer AUC "
            f"{report.get('pair_scorer_auc_shipped')} (shipped, fitted on these postings) / "
            f"{report.get('pair_scorer_auc_out_of_fold')} (out of fold); "
            f"{report['seconds_per_pair']} s per pair"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(matching_app, name="matching")
    app.add_typer(embeddings_app, name="embeddings")
    app.add_typer(resume_app, name="resume")
    app.add_typer(ingest_app, name="ingest")
    app.command("match")(match_command)
    app.command("demo")(demo_command)


__all__ = ["json", "register"]
