"""``are-workers media ...``: interview recordings on the command line.

Registered in the main CLI as ``media``. ``analyze`` runs exactly the code path the media
jobs run (``services.media.analyze``) on a local file, without the database, so an engineer
can see what a job would store for a recording, and why a bad upload fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

media_app = typer.Typer(help="Interview recordings: transcript, speech and video signals.")


@media_app.callback()
def main() -> None:
    """Media analysis tools (Whisper and OpenCV run locally; nothing is downloaded)."""


@media_app.command("analyze")
def analyze(
    file: Annotated[Path, typer.Argument(help="An audio or video recording.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    question: Annotated[
        str | None, typer.Option(help="The question asked, to score the answer's relevance.")
    ] = None,
    frames: Annotated[
        bool, typer.Option("--frames", help="Include per-frame data (with --json).")
    ] = False,
) -> None:
    """Probe, transcribe and analyse FILE; exit 2 with the reason when it cannot be used."""
    from are_workers.services.media.analyze import run_analysis

    code = run_analysis(file, question=question or None, json_output=json_output, frames=frames)
    if code:
        raise typer.Exit(code)
