"""``are-workers media ...``: interview recordings on the command line.

Registered in the main CLI as ``media``. ``analyze`` runs exactly the code path the media
jobs run (``services.media.analyze``) on a local file, without the database, so an engineer
can see what a job would store for a recording, and why a bad upload fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from are_workers.logs import configure_logging

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
    from are_workers.config import get_settings
    from are_workers.errors import InvalidInputError
    from are_workers.services.media.analyze import analyze_media, format_analysis

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)  # stderr: stdout stays JSON
    try:
        analysis = analyze_media(file, question=question or None, settings=settings)
    except InvalidInputError as exc:
        sys.stderr.write(f"error ({exc.code}): {exc.user_message}\n")
        raise typer.Exit(2) from None
    if json_output:
        sys.stdout.write(json.dumps(analysis.to_dict(include_frames=frames), indent=2))
    else:
        sys.stdout.write(format_analysis(analysis))
    sys.stdout.write("\n")
