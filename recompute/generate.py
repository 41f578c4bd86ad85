"""Token generation from a prefilled KV cache: greedy or sampled, streamed token by token.

``prefill`` runs the prompt once and returns the cache and the last position's logits; the
chunk-fusion path (blend.py) produces the same pair from stored chunk KVs. ``decode`` then
continues from either, so both paths share one sampler and one set of stop rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from blendcache.recompute.kv import KV
from blendcache.recompute.model import Engine
from blendcache.recompute.prefill import to_cache


@dataclass(frozen=True)
class SamplingParams:
    """OpenAI-style sampling knobs. ``temperature == 0`` (below ``MIN_TEMPERATURE``) is greedy."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prefilled:
    """A prompt's KV cache and the logits that predict the first new token."""

    cache: object  # transformers Cache (DynamicCache) holding every prompt token
    logits: torch.Tensor  # (vocab,) float32
    prompt_tokens: int
    prefill_ms: float


@dataclass(frozen=True)
class TokenStep:
    """One streamed step: the text it adds (possibly empty while a character is incomplete)."""

    token_id: int
    text: str


@dataclass
class Generation:
    """The finished result, filled in as ``decode`` runs."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" | "length"
    prompt_tokens: int = 0
    ttft_ms: float = 0.0


@torch.inference_mode()
def prefill(engine: Engine, prompt_ids: list[int], *, after: KV | None = None) -> Prefilled:
    """Run the prompt through the model. ``after`` (a ``KV`` of the first tokens, exact) is
    reused as is and only the rest of ``prompt_ids`` is computed (exact prefix caching)."""
    start = time.perf_counter()
    done = 0 if after is None else after.num_tokens
    cache = to_cache(engine, after)
    ids = torch.tensor([list(prompt_ids[done:])], device=engine.device)  # (1, T - done)
    positions = torch.arange(done, len(prompt_ids), device=engine.device)[None]
    out = engine.model(input_ids=ids, past_key_values=cache, position_ids=positions,
                       use_cache=True, logits_to_keep=1)
    logits = out.logits[0, -1].float()
    return Prefilled(out.past_key_values, logits, len(prompt_ids), (time.perf_counter() - start) * 1e3)


# NOTE: below this temperature sampling is the argmax anyway, and dividing float32 logits by it
# may overflow to inf (NaN probabilities): such requests decode greedily.
MIN_TEMPERATURE = 1e-5


def _pick(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator | None) -> int:
    if params.temperature < MIN_TEMPERATURE:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < params.top_p  # always keeps the top one
        sorted_p = torch.where(keep, sorted_p, torch.zeros_like(sorted_p))
        return int(order[torch.multinomial(sorted_p, 1, generator=gen)])
    return int(torch.multinomial(probs, 1, generator=gen))


@torch.inference_mode()
def decode(
    engine: Engine, start: Prefilled, params: SamplingParams, result: Generation | None = None
) -> Iterator[TokenStep]:
    """Yield new tokens until EOS, a stop string or ``max_new_tokens``; fills ``result``."""
    result = result if result is not None else Generation()
    result.prompt_tokens = start.prompt_tokens
    gen = None
    if params.seed is not None:
        gen = torch.Generator(device="cpu").manual_seed(params.seed)
    cache, logits, pos = start.cache, start.logits, start.prompt_tokens
    t0 = time.perf_counter()
    emitted = ""
    while len(result.token_ids) < params.max_new_tokens:
        token = _pick(logits, params, gen)
        if not result.token_ids:
            result.ttft_ms = start.prefill_ms + (time.perf_counter() - t0) * 1e3
        if token in engine.eos_token_ids:
            result.finish_reason = "stop"
            break
        result.token_ids.append(token)
        text = engine.tokenizer.decode(result.token_ids, skip_special_tokens=True)
        hit = _first_stop(text, params.stop)
        if hit is not None:
            text = text[:hit]
        if not text.endswith("\ufffd"):  # hold back half-decoded multi-byte characters
            delta, emitted = text[len(emitted):], text
            yield TokenStep(token, delta)
        if hit is not None:
            result.finish_reason = "stop"
            break
        out = engine.model(
            input_ids=torch.tensor([[token]], device=engine.device),
            past_key_values=cache,
            position_ids=torch.tensor([[pos]], device=engine.device),
            use_cache=True,
        )
        cache, logits, pos = out.past_key_values, out.logits[0, -1].float(), pos + 1
    else:
        result.finish_reason = "length"
    result.text = emitted


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def generate(engine: Engine, prompt_ids: list[int], params: SamplingParams) -> Generation:
    """Prefill and decode to the end (non-streaming)."""
    result = Generation()
    with engine.lock:
        for _ in decode(engine, prefill(engine, prompt_ids), params, result):
            pass
    return result
