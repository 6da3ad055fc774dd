"""The opt-in fast CPU path: the same model exported to ONNX, int8 weights, onnxruntime.

Why selective int8: dynamic int8 quantization of *every* MatMul loses too much (torch's
per-tensor ``quantize_dynamic`` reached only 0.946 mean cosine to fp32). Two things cause
most of the loss, and both are skipped here:

* the attention products (Q·Kᵀ and softmax·V) multiply two *activations*; dynamic
  quantization would quantize both sides per tensor on the fly;
* the FFN output projections (1536 -> 384) read GELU outputs, whose few large outliers
  stretch a per-tensor activation scale until the many small values round to zero.

Every other weight MatMul (Q/K/V, attention output, FFN input) is quantized per output
channel (``QInt8``, symmetric), which keeps each channel's own scale. On the sample resume
chunks this keeps cosine to fp32 above 0.99 at roughly twice the speed of fp32 (see
``bench/embedder.py``). The pooling and normalisation are part of the exported graph.

Export needs torch and ``onnx`` once; the result is cached under
``<data_dir>/models/<name>-<fingerprint>/`` with its measured fidelity, so later processes
only need onnxruntime. A file lock keeps concurrent workers from exporting twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from are_workers.errors import ConfigurationError
from are_workers.ml.embedder import (
    BaseEmbedder,
    _quiet_transformers,
    model_fingerprint,
    resolve_model_dir,
)

__all__ = [
    "EXPORT_RECIPE",
    "OnnxEmbedder",
    "ensure_onnx_model",
    "export_onnx",
    "quantize_selective_int8",
]

EXPORT_RECIPE = "v1-opset17-selective-int8-pc"
"""Part of the cache key: change it whenever export or quantization changes."""

MIN_MEAN_COSINE = 0.99
"""A quantized model below this on the probe texts is refused (the fp32 path is used instead)."""

_PROBE_TEXTS = (
    "Experience: Senior backend engineer building Python services on PostgreSQL and Kafka.",
    "Skills: Python, Django, FastAPI, Docker, Kubernetes, Terraform, AWS, REST APIs",
    "Experience: Staff nurse in a 24-bed medical ICU; ventilators, vasoactive drips, Epic.",
    "Education: Bachelor of Science in Nursing (BSN), Boston College, 2017",
    "Summary: Data analyst turning messy data into decisions with SQL, Tableau and Python.",
    "Experience: Lead the annual budget and rolling forecasts for a $300M business unit.",
    "Berufserfahrung: Entwicklung von REST APIs mit Python (Django) und PostgreSQL.",
    "Certifications: BLS, ACLS (American Heart Association), CCRN",
    "Led a team of five engineers; cut p99 latency from 900 ms to 120 ms with caching.",
    "Exceeded quota 11 of 12 quarters; pipeline management and forecasting in Salesforce.",
    "Operations manager running a 200,000 sq ft distribution centre with 120 staff.",
    "Product designer: user research, design systems in Figma, accessibility reviews.",
)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def export_onnx(model_dir: Path, target: Path, *, opset: int = 17) -> None:
    """Export encoder + mean pooling + L2 normalisation to one ONNX graph (fp32).

    Eager attention is traced (the SDPA path bakes Python branches into the trace). Batch and
    sequence axes are dynamic.
    """
    import torch
    from transformers import AutoModel

    class _Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    _quiet_transformers()
    encoder = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    ).eval()
    wrapper = _Pooled(encoder).eval()
    sample_ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    sample_mask = (sample_ids != 0).long()
    with torch.inference_mode():
        torch.onnx.export(
            wrapper,
            (sample_ids, sample_mask),
            str(target),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            opset_version=opset,
            do_constant_folding=True,
        )


_FFN_OUTPUT_RE = re.compile(r"layer\.\d+/output/dense/MatMul$")


def quantize_selective_int8(source: Path, target: Path) -> list[str]:
    """Dynamic int8 (per-channel weights) for every weight MatMul except the sensitive ones.

    Returns the names of the MatMul nodes left in fp32.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    weights = {initializer.name for initializer in graph.initializer}
    constants = {node.output[0] for node in graph.node if node.op_type == "Constant"}
    keep_fp32 = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and (
            not any(name in weights or name in constants for name in node.input)
            or _FFN_OUTPUT_RE.search(node.name)
        )
    ]
    quantize_dynamic(
        str(source),
        str(target),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=keep_fp32,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return keep_fp32


def _session(path: Path, num_threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.asarray(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])


def ensure_onnx_model(
    model_dir: Path, cache_dir: Path, *, quantize: bool = True, name: str = "all-MiniLM-L6-v2"
) -> Path:
    """The cached ONNX model for ``model_dir``; exported (and verified) on first use only.

    The quantized model is checked against the fp32 export on fixed probe texts and refused
    (:class:`ConfigurationError`) if its mean cosine falls below :data:`MIN_MEAN_COSINE`; the
    measured figures are kept next to it in ``meta.json``.
    """
    directory = cache_dir / f"{name}-{model_fingerprint(model_dir)}-{EXPORT_RECIPE}"
    fp32_path = directory / "model.fp32.onnx"
    int8_path = directory / "model.int8.onnx"
    wanted = int8_path if quantize else fp32_path
    if wanted.is_file():
        return wanted
    with _file_lock(directory / ".lock"):
        if wanted.is_file():  # another process finished while we waited
            return wanted
        try:
            import onnx  # noqa: F401 - only the one-time export and quantization need it
        except ImportError as exc:
            raise ConfigurationError(
                "ARE_EMBEDDING_BACKEND=onnx-int8 exports the model once and needs the 'onnx' "
                f"package for that (pip install onnx), or a ready export in {directory}. "
                "Use ARE_EMBEDDING_BACKEND=torch otherwise."
            ) from exc
        started = time.monotonic()
        if not fp32_path.is_file():
            with tempfile.TemporaryDirectory(dir=directory) as scratch:
                tmp = Path(scratch) / "model.onnx"
                export_onnx(model_dir, tmp)
                os.replace(tmp, fp32_path)
        if quantize:
            with tempfile.TemporaryDirectory(dir=directory) as scratch:
                tmp = Path(scratch) / "model.onnx"
                kept = quantize_selective_int8(fp32_path, tmp)
                fidelity = _probe_fidelity(model_dir, fp32_path, tmp)
                if fidelity["mean_cosine"] < MIN_MEAN_COSINE:
                    raise ConfigurationError(
                        f"int8 export of {name} reached mean cosine {fidelity['mean_cosine']:.4f} "
                        f"(< {MIN_MEAN_COSINE}); use ARE_EMBEDDING_BACKEND=torch."
                    )
                os.replace(tmp, int8_path)
            meta = {
                "recipe": EXPORT_RECIPE,
                "fp32_matmuls": kept,
                "export_seconds": round(time.monotonic() - started, 2),
                **fidelity,
            }
            (directory / "meta.json").write_text(json.dumps(meta, indent=2))
    return wanted


def _probe_fidelity(model_dir: Path, reference: Path, candidate: Path) -> dict[str, float]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
    tokenizer.enable_truncation(max_length=256)
    encodings = tokenizer.encode_batch(list(_PROBE_TEXTS))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    expected = _run(_session(reference, None), ids, mask)
    actual = _run(_session(candidate, None), ids, mask)
    cosines = (expected * actual).sum(axis=1)
    return {"mean_cosine": float(cosines.mean()), "min_cosine": float(cosines.min())}


class OnnxEmbedder(BaseEmbedder):
    """onnxruntime on CPU over the cached export; same interface and vectors as
    :class:`~are_workers.ml.embedder.TorchEmbedder` (cosine >= 0.99 when quantized)."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        cache_dir: Path,
        name: str = "all-MiniLM-L6-v2",
        quantize: bool = True,
        max_batch_tokens: int = 8192,
        max_batch_size: int = 256,
        num_threads: int | None = None,
    ) -> None:
        model_dir = resolve_model_dir(model_dir)
        super().__init__(
            model_dir,
            name=name,
            backend="onnx-int8" if quantize else "onnx-fp32",
            device="cpu",
            max_batch_tokens=max_batch_tokens,
            max_batch_size=max_batch_size,
        )
        self.model_path = ensure_onnx_model(model_dir, cache_dir, quantize=quantize, name=name)
        self._session = _session(self.model_path, num_threads)

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return _run(self._session, input_ids, attention_mask).astype(np.float32, copy=False)
