"""Chunk-fusion benchmark: TTFT and fidelity of KV reuse methods, side by side in one process.

    blendcache bench blend --data ../shared/data/rag/hotpotqa_distractor_100.json --limit 20
    python benchmarks/bench_blend.py --data FILE [--ratios 0.05,0.15,0.3] [--json OUT] [--plot P]

For every sample, with its chunk KVs already stored (memory tier), each method answers the same
token sequence: ``full_prefill``, ``prefix_cache`` (exact prefix reuse), ``full_reuse``
(r = 0), ``cacheblend_r{r}`` and ``random_r0.15`` (random token choice, the ablation). TTFT counts
the chunk lookup, fusion and the first token. Fidelity is measured against ``full_prefill``:
agreement of the greedy answer and KL(full || method) of the first answer token.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from blendcache.benchmarks._common import (
    best_f1,
    device_name,
    git_revision,
    median,
    normalize_answer,
    percentile,
    run_record,
)
from blendcache.chunk_cache.background import background_ids
from blendcache.chunk_cache.cache import ChunkCache
from blendcache.chunk_cache.fusion import fuse
from blendcache.chunk_cache.layout import PromptLayout, build_layout, format_document
from blendcache.config import BlendConfig
from blendcache.kernels import dispatch
from blendcache.readers import read_json_rows
from blendcache.recompute.blend import BlendOptions, blend
from blendcache.recompute.generate import Generation, Prefilled, SamplingParams, decode, prefill
from blendcache.recompute.kv import KV
from blendcache.recompute.model import Engine
from blendcache.recompute.prefill import prefill_kv
from blendcache.storage.blobs.disk import DiskTier
from blendcache.storage.blobs.memory import MemoryTier

Method = Callable[[Engine, ChunkCache, PromptLayout], Prefilled]

# Fidelity measures besides the issue's, kept out of its JSON file but printed in the table:
# result key -> (per-sample row, column title).
EXTRAS = {"answer_agreement": ("line", "agree@line"), "first_token_agreement": ("tok1", "tok1")}


def load_samples(path: str | Path, limit: int | None = None) -> list[dict]:
    """JSON array or JSON lines (optionally .gz) of ``{question, answers[], ctxs[{title, text}]}``."""
    rows = read_json_rows(path)
    return rows[:limit] if limit else rows


def add_distractors(rows: list[dict], picked: list[dict], k: int, seed: int = 0) -> list[dict]:
    """Multi-passage samples from single-passage ones (NQ-open's gold passages): each of
    ``picked`` gets ``k`` gold passages of other questions in ``rows`` as distractors, its own
    placed at a seeded random position among them."""
    def gold(row: dict) -> dict:
        return next((c for c in row["ctxs"] if c.get("isgold")), row["ctxs"][0])

    pool = [gold(r) for r in rows]
    rng = random.Random(seed)
    out = []
    for row in picked:
        own = gold(row)
        others = [c for c in pool if c["text"] != own["text"]]
        ctxs = rng.sample(others, k)
        ctxs.insert(rng.randrange(k + 1), own)
        out.append({**row, "ctxs": ctxs})
    return out


def _fused(options: BlendOptions) -> Method:
    def run(_engine: Engine, cache: ChunkCache, layout: PromptLayout) -> Prefilled:
        return fuse(cache, layout, options=options)[0]
    return run


def _with_cache(other: ChunkCache, method: Method) -> Method:
    """``method`` with its chunk KVs from ``other`` (e.g. chunks prefilled without background)."""
    def run(engine: Engine, _cache: ChunkCache, layout: PromptLayout) -> Prefilled:
        return method(engine, other, layout)
    return run


def _full_prefill(engine: Engine, _cache: ChunkCache, layout: PromptLayout) -> Prefilled:
    return prefill(engine, layout.ids)


def _prefix_cache(engine: Engine, cache: ChunkCache, layout: PromptLayout) -> Prefilled:
    """Exact prefix reuse: the stored prefix KV, everything after it computed. Run as a blend
    of a prompt without chunks, whose suffix is all the rest, so it goes through the same layer
    loop as the fusion (the HF forward given a past attends with an explicit mask, which made
    it slower than a full prefill)."""
    pkey, _ = cache.keys(layout)
    prefix = cache.tiers[0].get_many([pkey])[pkey]
    return blend(engine, layout.ids, prefix, [], BlendOptions(recompute_ratio=0.0))[0]


def _rounded_prefill(codec: str) -> Method:
    """A noise floor, not a reuse method: the exact prompt KV rounded (``bf16`` or ``int8`` per
    token), then the last prompt token run over it. Its agreement says how much a perturbation
    far smaller than any reuse error already changes the greedy answers."""
    def rounded(x: torch.Tensor) -> torch.Tensor:
        if codec == "bf16":
            return x.to(torch.bfloat16).to(x.dtype)
        q, scale = dispatch.quantize_int8(x)
        return dispatch.dequantize_int8(q, scale, x.dtype)

    def run(engine: Engine, _cache: ChunkCache, layout: PromptLayout) -> Prefilled:
        kv = prefill_kv(engine, layout.ids[:-1])
        return prefill(engine, layout.ids, after=KV(rounded(kv.k), rounded(kv.v), 0))
    return run


def _from_tier(tier, options: BlendOptions) -> Method:
    """Fusion with the chunk KVs read from ``tier`` (e.g. an int8 disk tier) instead of memory."""
    def run(engine: Engine, cache: ChunkCache, layout: PromptLayout) -> Prefilled:
        reader = ChunkCache(engine, tiers=[tier], shared_prefix=cache.shared_prefix,
                            background=cache.background)
        start, report = fuse(reader, layout, options=options)
        if report.chunks_reused != report.chunks_total:  # it would have prefilled: not a read
            raise RuntimeError(f"{tier.name}: {report.chunks_total - report.chunks_reused} "
                               f"chunks missing")
        return start
    return run


def _cold(options: BlendOptions, share: float = 1.0) -> Method:
    """Fusion on a partly or wholly cold chunk cache: new documents under a known system
    prompt. Only the prefix, the background and the chunks outside ``cold_chunks(n, share)``
    are stored; the others are prefilled, stored and fused within the timed call. The KVs are
    the warm methods' own, so its fidelity is theirs. Served, a request with more than
    ``[blend] max_missing_share`` of its chunk tokens missing is a full prefill instead."""
    def run(engine: Engine, cache: ChunkCache, layout: PromptLayout) -> Prefilled:
        pkey, ckeys = cache.keys(layout)
        cold = cold_chunks(len(ckeys), share)
        known = [pkey, cache.background_key(layout)] if cache.background else [pkey]
        known += [key for i, key in enumerate(ckeys) if i not in cold]
        tier = MemoryTier(8 << 30)
        tier.put_many(cache.tiers[0].get_many(known))
        fresh = ChunkCache(engine, tiers=[tier], shared_prefix=cache.shared_prefix,
                           background=cache.background)
        start, report = fuse(fresh, layout, options=options)
        if report.chunks_reused != len(ckeys) - len(cold):  # the timing would not be this one's
            raise RuntimeError(f"a lookup with {len(cold)} cold chunks of {len(ckeys)} found "
                               f"{report.chunks_reused} stored")
        return start
    return run


def cold_chunks(n: int, share: float) -> set[int]:
    """``floor(n * share)`` chunk indexes spread evenly over the prompt (all of them at 1)."""
    return {i for i in range(n) if int((i + 1) * share + 1e-9) > int(i * share + 1e-9)}


def methods(ratios: list[float], *, check_layers: tuple[int, ...], selection: str,
            also_check_layers: tuple[int, ...] | None = None) -> dict[str, Method]:
    out: dict[str, Method] = {
        "full_prefill": _full_prefill,
        "prefix_cache": _prefix_cache,
        "full_reuse": _fused(BlendOptions(recompute_ratio=0.0)),
    }
    for r in ratios:
        out[f"cacheblend_r{r:g}"] = _fused(BlendOptions(recompute_ratio=r, method=selection,
                                                        check_layers=check_layers))
    if also_check_layers:  # the same ratios with other check layers, side by side
        tag = "-".join(str(layer) for layer in also_check_layers)
        for r in ratios:
            out[f"cacheblend_r{r:g}_L{tag}"] = _fused(BlendOptions(
                recompute_ratio=r, method=selection, check_layers=also_check_layers))
    out["random_r0.15"] = _fused(BlendOptions(recompute_ratio=0.15, check_layers=check_layers,
                                              method="random"))
    return out


@dataclass
class Measured:
    ttft_ms: float
    answer: str
    log_probs: torch.Tensor  # (vocab,) float64, first answer token


def _measure(engine: Engine, method: Method, cache: ChunkCache, layout: PromptLayout,
             max_new_tokens: int) -> Measured:
    t0 = time.perf_counter()
    start = method(engine, cache, layout)
    start.logits.argmax().item()  # the first token is chosen: TTFT stops here
    ttft_ms = (time.perf_counter() - t0) * 1e3
    result = Generation()
    for _ in decode(engine, start, SamplingParams(max_new_tokens=max_new_tokens), result):
        pass
    return Measured(ttft_ms, result.text.strip(), start.logits.double().log_softmax(-1))


def run_blend_bench(engine: Engine, samples: list[dict], *, ratios: list[float],
                    max_new_tokens: int = 24,
                    check_layers: tuple[int, ...] = BlendConfig().check_layers,
                    selection: str = "weighted",
                    also_check_layers: tuple[int, ...] | None = None,
                    shared_prefix: bool = True, background: str = BlendConfig().background,
                    compare_background: bool = False, noise_floor: bool = False,
                    cold_shares: tuple[float, ...] = (), disk_dir: str | None = None,
                    prompt: str = "cacheblend", log=print) -> dict:
    """Every method on every sample. With ``disk_dir``, two more methods read the chunk KVs
    from disk tiers there: ``cacheblend_r0.15_disk`` (fp32) and ``cacheblend_r0.15_int8``.
    With ``also_check_layers``, ``cacheblend_r{r}_L{layers}`` run each ratio with those check
    layers too. ``background`` is what chunks are prefilled after besides the shared prefix
    (chunk_cache/background.py); with ``compare_background``, ``full_reuse_nobg`` and
    ``cacheblend_r{r}_nobg`` use chunks prefilled after the shared prefix alone. With
    ``noise_floor``, ``full_prefill_kv_bf16`` and ``full_prefill_kv_int8`` round the exact
    prompt KV (references for the agreement metric, not reuse methods). For each share s in
    ``cold_shares``, ``cacheblend_r0.15_cold{s}`` pays for prefilling that share of the chunks
    too (``cacheblend_r0.15_cold`` for s = 1: a first request).

    Besides the issue's JSON, two more fidelity measures per method (left out of the JSON
    file, in the table): ``result["answer_agreement"]``, a looser agreement (the first line of
    the answer equal to full prefill's after SQuAD normalisation, which forgives a different
    continuation after the answer), and ``result["first_token_agreement"]``, the share of
    samples whose greedy first answer token is full prefill's."""
    table = methods(ratios, check_layers=check_layers, selection=selection,
                    also_check_layers=also_check_layers)
    if noise_floor:
        for codec in ("bf16", "int8"):
            table[f"full_prefill_kv_{codec}"] = _rounded_prefill(codec)
    for share in cold_shares:
        table["cacheblend_r0.15_cold" + ("" if share == 1 else f"{share:g}")] = _cold(
            BlendOptions(recompute_ratio=0.15, check_layers=check_layers, method=selection),
            share)
    cache = ChunkCache(engine, tiers=[MemoryTier(8 << 30)], shared_prefix=shared_prefix,
                       background=background_ids(engine, background))
    caches = [cache]
    if compare_background:
        bare = ChunkCache(engine, tiers=[MemoryTier(8 << 30)], shared_prefix=shared_prefix)
        caches.append(bare)
        table["full_reuse_nobg"] = _with_cache(bare, table["full_reuse"])
        for r in ratios:
            table[f"cacheblend_r{r:g}_nobg"] = _with_cache(bare, table[f"cacheblend_r{r:g}"])
    disks = []
    if disk_dir is not None:
        options = BlendOptions(recompute_ratio=0.15, check_layers=check_layers, method=selection)
        for codec, name in (("none", "cacheblend_r0.15_disk"), ("int8", "cacheblend_r0.15_int8")):
            disks.append(DiskTier(Path(disk_dir) / codec, 1 << 40, codec=codec))
            table[name] = _from_tier(disks[-1], options)
    per: dict[str, dict[str, list[float]]] = {
        name: {"ttft": [], "speedup": [], "f1": [], "agree": [], "line": [], "tok1": [], "kl": []}
        for name in table}
    prompt_tokens = []
    layouts = [_layout(engine, s, prompt) for s in samples]
    _measure(engine, _full_prefill, cache, layouts[0], 1)  # warm-up, not recorded
    for i, (sample, layout) in enumerate(zip(samples, layouts)):
        for each in caches:  # store this sample's chunks: every method below finds them warm
            each.lookup(layout)
        pkey, ckeys = cache.keys(layout)
        for disk in disks:
            disk.put_many(cache.tiers[0].get_many([pkey, *ckeys]))
        prompt_tokens.append(len(layout.ids))
        runs = {name: _measure(engine, m, cache, layout, max_new_tokens) for name, m in table.items()}
        ref = runs["full_prefill"]
        for name, got in runs.items():
            row = per[name]
            row["ttft"].append(got.ttft_ms)
            row["speedup"].append(ref.ttft_ms / got.ttft_ms)
            row["f1"].append(best_f1(got.answer, sample.get("answers", [])))
            row["agree"].append(float(got.answer == ref.answer))
            row["line"].append(float(_first_line(got.answer) == _first_line(ref.answer)))
            row["tok1"].append(float(got.log_probs.argmax() == ref.log_probs.argmax()))
            kl = torch.sum(ref.log_probs.exp() * (ref.log_probs - got.log_probs)).item()
            row["kl"].append(max(kl, 0.0))
        log(f"[{i + 1}/{len(samples)}] {len(layout.ids)} tokens: " + ", ".join(
            f"{n} {per[n]['ttft'][-1]:.0f}ms" for n in ("full_prefill", *list(table)[3:4])))
        for each in caches:  # keep memory bounded (the background is prefilled again: untimed)
            each.tiers[0].delete_many(each.tiers[0].keys())
    for disk in disks:
        log(f"disk tier {disk.codec}: {disk.stats.bytes / max(disk.stats.entries, 1) / 1e6:.2f} "
            f"MB per chunk on average")
    return {
        "device": device_name(str(engine.device)),
        "model": f"{engine.spec.name} ({str(engine.spec.dtype).removeprefix('torch.')})",
        "samples": len(samples),
        "prompt_tokens_p50": median(prompt_tokens),
        "methods": {name: {
            "ttft_ms_p50": round(median(row["ttft"]), 2),
            "ttft_ms_p90": round(percentile(row["ttft"], 90), 2),
            "speedup": round(median(row["speedup"]), 3),
            "f1": round(sum(row["f1"]) / len(row["f1"]), 4),
            "agreement": round(sum(row["agree"]) / len(row["agree"]), 4),
            "kl_first_token": round(sum(row["kl"]) / len(row["kl"]), 5),
        } for name, row in per.items()},
        **{extra: {name: round(sum(row[key]) / len(row[key]), 4) for name, row in per.items()}
           for extra, (key, _title) in EXTRAS.items()},
    }


def _first_line(answer: str) -> str:
    return normalize_answer(answer.strip().split("\n", 1)[0])


# The RAG prompt of CacheBlend's evaluation: an instruction before the passages (the shared
# prefix) and again with the question after them. ``plain`` sends the bare question.
PROMPTS = {
    "cacheblend": (
        "You will be asked a question after reading several passages. Please directly answer "
        "the question based on the given passages. Do NOT repeat the question. The answer "
        "should be within 5 words.",
        "Answer the question directly based on the given passages. Do NOT repeat the "
        "question. The answer should be within 5 words.\nQuestion: {question}",
    ),
    "plain": (None, "{question}"),
}


def _layout(engine: Engine, sample: dict, prompt: str = "cacheblend") -> PromptLayout:
    system, question = PROMPTS[prompt]
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question.format(question=sample["question"])})
    docs = [format_document(c["text"], c.get("title")) for c in sample["ctxs"]]
    return build_layout(engine, messages, docs)


def format_table(result: dict) -> str:
    extras = [e for e in EXTRAS if e in result]
    head = (f"{'method':<24}{'ttft p50':>10}{'ttft p90':>10}{'speedup':>9}{'f1':>8}"
            f"{'agree':>8}{'kl':>10}" + "".join(f"{EXTRAS[e][1]:>12}" for e in extras))
    lines = [f"{result['model']} on {result['device']}",
             f"{result['samples']} samples, prompt tokens p50 {result['prompt_tokens_p50']:.0f}",
             head, "-" * len(head)]
    for name, m in result["methods"].items():
        lines.append(f"{name:<24}{m['ttft_ms_p50']:>10.0f}{m['ttft_ms_p90']:>10.0f}"
                     f"{m['speedup']:>8.2f}x{m['f1']:>8.3f}{m['agreement']:>8.2f}"
                     f"{m['kl_first_token']:>10.4f}"
                     + "".join(f"{result[e][name]:>12.2f}" for e in extras))
    if extras:
        lines.append("agree: the whole greedy answer equals full prefill's; agree@line: its "
                     "first line does, SQuAD-normalised; tok1: its first token does")
    return "\n".join(lines)


def plot(result: dict, out: str) -> None:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'blendcache[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in result["methods"].items():
        ax.scatter(m["speedup"], m["kl_first_token"])
        ax.annotate(name, (m["speedup"], m["kl_first_token"]), fontsize=8)
    ax.set_xlabel("TTFT speed-up over full prefill (median)")
    ax.set_ylabel("first-token KL from full prefill (mean)")
    ax.set_title(f"{result['model']}, {result['samples']} samples")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="FILE",
                        help="JSON array or JSONL of {question, answers[], ctxs[{title, text}]}")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="samples (default 20)")
    parser.add_argument("--offset", type=int, default=0, metavar="K",
                        help="skip the first K samples (e.g. to measure on questions not "
                             "looked at while tuning)")
    parser.add_argument("--distractors", type=int, default=0, metavar="K",
                        help="for single-passage data (NQ-open's gold passages): add K other "
                             "questions' passages to each sample, seeded by --seed")
    parser.add_argument("--seed", type=int, default=0, help="seed of --distractors (default 0)")
    parser.add_argument("--ratios", default="0.05,0.15,0.3",
                        help="recompute ratios for cacheblend_r{r} (default 0.05,0.15,0.3)")
    parser.add_argument("--check-layers", default=",".join(map(str, BlendConfig().check_layers)),
                        help="check layers, comma-separated (several = gradual filtering; "
                             "default: the served default, [blend] check_layers)")
    parser.add_argument("--also-check-layers", default="", metavar="LAYERS",
                        help="also run every ratio with these check layers, side by side "
                             "(cacheblend_r{r}_L{layers}), e.g. 2,8")
    parser.add_argument("--selection", choices=["deviation", "weighted"], default="weighted",
                        help="token choice of cacheblend_r{r}: CacheBlend's KV deviation, or "
                             "deviation weighted by the question's attention (default)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="cacheblend",
                        help="RAG prompt: CacheBlend's instruction + question (default) or the "
                             "bare question")
    parser.add_argument("--no-shared-prefix", action="store_true",
                        help="prefill chunks alone from position 0 (no shared prefix)")
    parser.add_argument("--background", default=BlendConfig().background, metavar="SPEC",
                        help="what chunks are prefilled after besides the shared prefix: "
                             "builtin, none, or a text file of passages (default: the served "
                             "default, [blend] background)")
    parser.add_argument("--compare-background", action="store_true",
                        help="also run full_reuse and every ratio on chunks prefilled without "
                             "the background (full_reuse_nobg, cacheblend_r{r}_nobg)")
    parser.add_argument("--noise-floor", action="store_true",
                        help="also run the full prefill with its prompt KV rounded to bf16 and "
                             "int8 (full_prefill_kv_bf16/_int8): what agreement tiny "
                             "perturbations already cost")
    parser.add_argument("--cold", action="store_true",
                        help="also run r=0.15 on a cold chunk cache, every chunk prefilled "
                             "and stored within the timed call (cacheblend_r0.15_cold)")
    parser.add_argument("--cold-shares", default="", metavar="SHARES",
                        help="also run r=0.15 with these shares of the chunks cold, e.g. "
                             "0.25,0.5,0.75 (cacheblend_r0.15_cold{share})")
    parser.add_argument("--disk-dir", metavar="DIR",
                        help="also measure r=0.15 with chunk KVs read from disk tiers here, "
                             "fp32 and int8 (cacheblend_r0.15_disk, cacheblend_r0.15_int8)")
    parser.add_argument("--json", metavar="OUT", help="write the result JSON here")
    parser.add_argument("--plot", metavar="OUT.png", help="speed-up vs KL scatter plot")


def run(args: argparse.Namespace, engine: Engine) -> dict:
    if args.distractors:
        rows = load_samples(args.data)
        samples = add_distractors(rows, rows[args.offset:args.offset + args.limit],
                                  args.distractors, args.seed)
    else:
        samples = load_samples(args.data, args.offset + args.limit)[args.offset:]
    result = run_blend_bench(
        engine, samples, ratios=[float(r) for r in args.ratios.split(",") if r],
        max_new_tokens=args.max_new_tokens,
        check_layers=tuple(int(x) for x in args.check_layers.split(",") if x),
        selection=args.selection,
        also_check_layers=tuple(int(x) for x in args.also_check_layers.split(",") if x) or None,
        shared_prefix=not args.no_shared_prefix, background=args.background,
        compare_background=args.compare_background, noise_floor=args.noise_floor,
        cold_shares=tuple(dict.fromkeys(
            [float(x) for x in args.cold_shares.split(",") if x] + ([1.0] if args.cold else []))),
        disk_dir=args.disk_dir, prompt=args.prompt,
        log=lambda s: print(s, file=sys.stderr))
    print(f"git {git_revision()}")
    print(format_table(result))
    if args.json:
        issue_keys = {k: v for k, v in result.items() if k not in EXTRAS}
        issue_keys["run"] = run_record(
            vars(args), device=result["device"], model=engine.spec.name,
            dtype=str(engine.spec.dtype).removeprefix("torch."))
        Path(args.json).write_text(json.dumps(issue_keys, indent=2) + "\n")
    if args.plot:
        plot(result, args.plot)
    return result


def main(argv: list[str] | None = None) -> int:
    from blendcache.config import ModelConfig
    from blendcache.recompute.model import load_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--model", default=ModelConfig().path)
    parser.add_argument("--data-dir", default=".blendcache")
    args = parser.parse_args(argv)
    run(args, load_engine(ModelConfig(path=args.model), data_dir=args.data_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
