"""Analysis of recorded interview answers: probe, transcription, speech and video signals,
proctoring events. No database here: actors persist what these functions return.

The modules, in the order a job uses them:

- ``probe``: open the container with PyAV and turn every kind of bad upload into an
  ``InvalidInputError`` with a message a recruiter can act on.
- ``transcription``: Whisper in fixed chunks with a checkpoint after each.
- ``speech_analytics``: speaking rate, pauses, fillers, relevance, from the words' timings.
- ``video_analysis``: frames sampled at 2 fps, face and image-quality signals.
- ``proctoring``: timestamped integrity events and a summary for *human* review.
- ``analyze``: all of the above for one local file (the CLI and the actors call it).

This package module holds only the small value types they share, so that importing it is
cheap and the submodules can import it without cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from are_workers.models.classification import DataCategory

BIOMETRIC = DataCategory.BIOMETRIC
"""Face detections are biometric data (GDPR Art. 9): everything derived from them is marked
so, in the dataclasses' ``data_category`` and in their serialised form."""

SignalValue = float | int | bool | str | None


@dataclass(frozen=True, slots=True)
class Signal:
    """One measured signal with the definition a recruiter reads next to it.

    Why the definition travels with the value: a number like "pause ratio 0.18" is
    meaningless, or misleading, without knowing exactly what was measured and how.
    """

    value: SignalValue
    unit: str
    definition: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "definition": self.definition}


@dataclass(frozen=True, slots=True)
class Interval:
    """A time range in seconds from the start of the media."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return round(self.end - self.start, 3)

    def to_dict(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end, "duration": self.duration}


def signals_to_dict(signals: dict[str, Signal]) -> dict[str, dict[str, Any]]:
    """``{name: {value, unit, definition}}``: the stored and displayed form of signals."""
    return {name: signal.to_dict() for name, signal in signals.items()}


__all__ = ["BIOMETRIC", "Interval", "Signal", "SignalValue", "signals_to_dict"]
