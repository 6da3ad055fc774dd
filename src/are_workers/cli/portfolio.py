"""``are-workers portfolio evaluate PATH --job JOB.md``: the deep evaluation, locally.

Like ``resume parse``, nothing here needs the database, the broker or the network: the items
are read from disk, the job's requirements from a Markdown posting, and the evaluation is
the same :func:`evaluate_portfolio` the worker runs, with the same archive limits (zip-slip,
escaping links, device files and bombs are refused and reported as concerns). ``--json``
prints exactly one JSON document on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from are_workers.cli.output import console, err_console, friendly_errors, print_json
from are_workers.errors import InvalidInputError

if TYPE_CHECKING:
    from are_workers.services.portfolios.evaluate import PortfolioEvaluation, PortfolioItemInput
    from are_workers.services.portfolios.evidence import Requirement

portfolio_app = typer.Typer(help="Portfolio tools that need no database.")

MANIFEST = "portfolio.json"


def load_items(path: Path, max_file_bytes: int) -> list[PortfolioItemInput]:
    """The items at ``path``: one file, a folder's files, or a folder's ``portfolio.json``.

    A manifest lists ``{"file": ..., "title": ..., "description": ...}`` or ``{"url": ...}``
    entries (links are recorded, never fetched). Files over the upload limit are refused here
    with the limit in words, before they are read.
    """
    from are_workers.services.portfolios.evaluate import PortfolioItemInput

    def read(item_id: str, file: Path, **metadata: str | None) -> PortfolioItemInput:
        if not file.is_file():
            raise InvalidInputError(f"'{file}' is not a file.", code="not_a_file")
        size = file.stat().st_size
        if size > max_file_bytes:
            raise InvalidInputError(
                f"'{file.name}' is {size / 1e6:.1f} MB, over the {max_file_bytes / 1e6:.1f} MB "
                "upload limit (ARE_MAX_FILE_BYTES).",
                code="file_too_large",
            )
        return PortfolioItemInput.from_path(item_id, file, **metadata)

    if path.is_file():
        return [read(path.name, path)]
    manifest = path / MANIFEST
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text())["items"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f'{manifest} is not a portfolio manifest ({{"items": [...]}}): {exc}',
                code="invalid_manifest",
            ) from None
        items = []
        for n, entry in enumerate(entries):
            metadata = {"title": entry.get("title"), "description": entry.get("description")}
            if "file" in entry:
                target = (path / entry["file"]).resolve()
                if not target.is_relative_to(path.resolve()):
                    raise InvalidInputError(
                        f"{MANIFEST} item {n} points outside the folder: {entry['file']!r}.",
                        code="invalid_manifest",
                    )
                items.append(read(f"{n}", target, **metadata))
            else:
                items.append(PortfolioItemInput(f"{n}", url=entry.get("url"), **metadata))
        return items
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [read(p.name, p) for p in files]


def job_requirements(job: Path) -> tuple[str, list[Requirement]]:
    """The posting's title and its requirements as the evaluation needs them."""
    from are_workers.services.matching.postings import parse_job_markdown
    from are_workers.services.portfolios.evidence import Requirement

    spec = parse_job_markdown(job.read_text(encoding="utf-8", errors="replace"))
    return spec.title, [
        Requirement(f"r{n}", r.text, kind=getattr(r.kind, "value", r.kind), must_have=r.must_have)
        for n, r in enumerate(spec.requirements)
    ]


def evaluation_document(result: PortfolioEvaluation, job_title: str) -> dict[str, Any]:
    """The evaluation as plain JSON (passages summarised by count: they are the inputs)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if hasattr(value, "tolist"):
            return value.tolist()
        return value

    items = []
    for analysis in result.items:
        item = plain(dataclasses.replace(analysis, passages=()))
        item.pop("passages")
        item["passages"] = len(analysis.passages)
        items.append(item)
    document = plain(dataclasses.replace(result, items=()))
    document["items"] = items
    document["job"] = job_title
    return json.loads(json.dumps(document, default=str))


@portfolio_app.command("evaluate")
def portfolio_evaluate(
    path: Annotated[Path, typer.Argument(exists=True, readable=True, help="File or folder.")],
    job: Annotated[
        Path, typer.Option("--job", exists=True, dir_okay=False, help="Job posting (Markdown).")
    ],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Evaluate a portfolio (a file, a folder, or a folder with portfolio.json) against a job."""
    from are_workers.config import get_settings
    from are_workers.logs import configure_logging
    from are_workers.ml.embedder import get_embedder
    from are_workers.services.portfolios.evaluate import PortfolioLimits, evaluate_portfolio

    settings = get_settings()
    if not structlog.is_configured():
        configure_logging(settings.log_level, json=False)  # to stderr: stdout is the result
    with friendly_errors():
        items = load_items(path, settings.max_file_bytes)
        title, requirements = job_requirements(job)
        err_console.print(f"{len(items)} item(s), {len(requirements)} requirement(s); "
                          "loading the embedding model")  # fmt: skip
        embedder = get_embedder(settings)
        result = evaluate_portfolio(
            items,
            requirements,
            embed=embedder.embed,
            embedding_model=embedder.info.key,
            limits=PortfolioLimits.from_settings(settings),
        )
    document = evaluation_document(result, title)
    if json_output:
        print_json(document)
        return
    _print_human(document)


def _print_human(document: dict[str, Any]) -> None:
    score = document["overall_score"]
    console.print(
        f"[bold]{document['job']}[/]: {document['outcome']}"
        + (f", score {score:.2f}" if score is not None else "")
        + f" ({document['files_processed']} files, {document['seconds']:.1f} s)"
    )
    if document["reason"]:
        console.print(document["reason"])
    console.print(document["summary"])
    for finding in document["findings"]:
        colour = {"strength": "green", "gap": "yellow", "concern": "red"}[finding["kind"]]
        console.print(f"  [{colour}]{finding['kind']}[/] {finding['summary']}")
    for item in document["items"]:
        if item["error_code"]:
            err_console.print(
                f"[red]{item['label'] or item['item_id']}[/]: {item['error_message']} "
                f"({item['error_code']})"
            )


def register(app: typer.Typer) -> None:
    app.add_typer(portfolio_app, name="portfolio")
