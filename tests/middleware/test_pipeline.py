"""ChatPipeline driven directly on the tiny random-weight model: which path answers a request
(plain prefill, full prefill with chunks deferred, fusion, semantic replay), what it reports,
and how a failing cache degrades. The answers are random text; the route tests check real ones.
"""

import pytest

from blendcache.chunk_cache.cache import build_chunk_cache
from blendcache.chunk_cache.layout import build_layout, format_document
from blendcache.config import BlendConfig, CategoryConfig, ModelConfig, SemanticConfig
from blendcache.errors import NotFoundError, StorageError
from blendcache.middleware.app import build_semantic_cache
from blendcache.middleware.pipeline import ChatJob, ChatPipeline
from blendcache.middleware.schemas import ChatCompletionRequest
from blendcache.recompute.generate import SamplingParams, generate
from blendcache.recompute.select import budget, schedule
from blendcache.storage.blobs.base import TierStats

QUESTION = "When was the Eiffel Tower completed?"
DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Mount Fuji is the highest mountain in Japan."]
MAX_TOKENS = 4


def make_request(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "tiny-llama", "messages": [{"role": "user", "content": QUESTION}], **fields})


def make_job(*, tenant: str = "default", **fields) -> ChatJob:
    return ChatJob(make_request(max_tokens=MAX_TOKENS, **fields), tenant=tenant)


@pytest.fixture
def make_pipeline(tiny_engine, make_settings, request):
    """``make_pipeline(**sections)``: a pipeline over the tiny model, built as create_app builds
    it. The semantic layer is off unless a ``semantic`` section is given (then it runs over the
    session's embedder)."""

    def make(**sections) -> ChatPipeline:
        sections.setdefault("semantic", SemanticConfig(enabled=False))
        settings = make_settings(**sections)
        semantic = None
        if settings.semantic.enabled:
            semantic = build_semantic_cache(settings, request.getfixturevalue("embedder"))
        return ChatPipeline(settings, engine=tiny_engine,
                            chunk_cache=build_chunk_cache(settings, tiny_engine),
                            semantic=semantic)

    return make


@pytest.fixture
def layout(tiny_engine):
    """The layout of ``make_job(documents=DOCS)``."""
    return build_layout(tiny_engine, [{"role": "user", "content": QUESTION}],
                        [format_document(d) for d in DOCS])


@pytest.fixture
def full_prefill_answer(tiny_engine, layout) -> list[int]:
    """The token ids a plain prefill of the whole RAG prompt answers with."""
    return generate(tiny_engine, layout.ids, SamplingParams(max_new_tokens=MAX_TOKENS)).token_ids


def answer(pipeline: ChatPipeline, job: ChatJob):
    """Run a request to the end, deferred work included: (run, result)."""
    run = pipeline.start(job)
    result = run.finish()
    run.after_response()
    return run, result


def chunk_info(run) -> dict:
    """The run's ``blendcache`` object without its timing."""
    return {k: v for k, v in run.info.items() if k != "ttft_ms"}


def tokens_recomputed(pipeline: ChatPipeline, layout, ratio: float) -> int:
    """Chunk tokens a fusion at ``ratio`` carries through the last layer (the last check
    layer's share of the gradual-filtering schedule)."""
    shares = schedule(ratio, pipeline.settings.blend.check_layers, pipeline.engine.spec.num_layers)
    return budget(sum(len(c) for c in layout.chunks), shares[-1])


# -- plain requests ---------------------------------------------------------------------------


def test_a_request_without_documents_is_a_plain_model_call(make_pipeline, tiny_engine):
    pipeline = make_pipeline()
    run = pipeline.start(make_job())
    result = run.finish()
    prompt = tiny_engine.chat_prompt_ids([{"role": "user", "content": QUESTION}])
    expected = generate(tiny_engine, prompt, SamplingParams(max_new_tokens=MAX_TOKENS))
    assert run.cache_status == "miss"
    assert list(run.info) == ["ttft_ms"]
    assert (result.token_ids, result.prompt_tokens) == (expected.token_ids, len(prompt))
    assert (len(result.token_ids), result.finish_reason) == (MAX_TOKENS, "length")
    assert dict(pipeline.metrics) == {"requests": 1, "completion_tokens": MAX_TOKENS}


def test_an_unknown_model_is_not_found(make_pipeline):
    pipeline = make_pipeline()
    with pytest.raises(NotFoundError) as info:
        pipeline.start(make_job(model="gpt-4o"))
    assert (info.value.status_code, info.value.param, info.value.code) == (
        404, "model", "model_not_found")
    assert pipeline.metrics["requests"] == 0
    assert pipeline.models() == ["tiny-llama"]
    pipeline.check_model("default")  # the alias of the one served model


@pytest.mark.parametrize("fields,expected", [
    ({}, SamplingParams(max_new_tokens=32)),  # [model] max_new_tokens
    ({"max_tokens": 7}, SamplingParams(max_new_tokens=7)),
    ({"max_tokens": 7, "max_completion_tokens": 5}, SamplingParams(max_new_tokens=5)),
    ({"temperature": 0.7, "top_p": 0.9, "seed": 3, "stop": "\n"},
     SamplingParams(max_new_tokens=32, temperature=0.7, top_p=0.9, seed=3, stop=("\n",))),
    ({"stop": ["a", "b"], "temperature": 0}, SamplingParams(max_new_tokens=32, stop=("a", "b"))),
])
def test_sampling_maps_the_request(make_pipeline, fields, expected):
    pipeline = make_pipeline(model=ModelConfig(max_new_tokens=32))
    assert pipeline.sampling(make_request(**fields)) == expected


# -- chunk layer ------------------------------------------------------------------------------


def test_cold_documents_are_a_full_prefill_and_stored_after_the_response(
        make_pipeline, layout, full_prefill_answer):
    pipeline = make_pipeline()  # [blend] max_missing_share = 0.7: both chunks missing is cold
    run = pipeline.start(make_job(documents=DOCS))
    result = run.finish()
    assert run.cache_status == "miss"
    assert chunk_info(run) == {"chunks_reused": 0, "chunks_total": 2, "chunks_deferred": 2}
    assert result.token_ids == full_prefill_answer
    assert pipeline.chunk_cache.plan(layout, "default").missing == (0, 1)  # not stored yet
    run.after_response()
    assert pipeline.chunk_cache.plan(layout, "default").missing == ()
    assert pipeline.metrics["chunks_deferred"] == 2


def test_a_second_request_with_the_same_documents_is_fused(make_pipeline, layout):
    pipeline = make_pipeline()
    answer(pipeline, make_job(documents=DOCS))
    run, _ = answer(pipeline, make_job(documents=DOCS))
    assert run.cache_status == "blend"
    assert chunk_info(run) == {"chunks_reused": 2, "chunks_total": 2, "recompute_ratio": 0.15,
                               "tokens_recomputed": tokens_recomputed(pipeline, layout, 0.15)}
    assert (pipeline.metrics["chunks_reused"], pipeline.metrics["chunks_total"]) == (2, 4)


def test_a_mostly_warm_request_is_fused_and_stores_its_new_chunk_within(make_pipeline):
    pipeline = make_pipeline()
    answer(pipeline, make_job(documents=DOCS))
    more = DOCS + ["Fuji last erupted in 1707."]  # its tokens are far under 70% of the chunks'
    run = pipeline.start(make_job(documents=more))
    assert run.cache_status == "blend"
    assert (run.info["chunks_reused"], run.info["chunks_total"]) == (2, 3)
    assert "chunks_deferred" not in run.info
    assert pipeline.chunk_cache.stats()["prefills"] == 5  # prefix, background, 3 chunks


def test_max_missing_share_one_fuses_a_cold_request(make_pipeline, layout):
    pipeline = make_pipeline(blend=BlendConfig(max_missing_share=1.0))
    run = pipeline.start(make_job(documents=DOCS))
    assert run.cache_status == "miss"  # fused, but nothing was reused
    assert chunk_info(run) == {"chunks_reused": 0, "chunks_total": 2, "recompute_ratio": 0.15,
                               "tokens_recomputed": tokens_recomputed(pipeline, layout, 0.15)}
    assert pipeline.chunk_cache.plan(layout, "default").missing == ()  # stored while fusing


def test_max_missing_share_zero_fuses_only_when_every_chunk_is_stored(make_pipeline):
    pipeline = make_pipeline(blend=BlendConfig(max_missing_share=0.0))
    answer(pipeline, make_job(documents=DOCS[:1]))
    run, _ = answer(pipeline, make_job(documents=DOCS))  # one of two chunks missing
    assert (run.cache_status, chunk_info(run)) == (
        "miss", {"chunks_reused": 0, "chunks_total": 2, "chunks_deferred": 1})
    again = pipeline.start(make_job(documents=DOCS))
    assert (again.cache_status, again.info["chunks_reused"]) == ("blend", 2)


def test_the_requests_recompute_ratio_beats_the_categorys_and_the_default(
        make_pipeline, layout):
    categories = (CategoryConfig(name="default", recompute_ratio=0.5),)
    blend = BlendConfig(recompute_ratio=0.2, max_missing_share=1.0)
    pipeline = make_pipeline(semantic=SemanticConfig(categories=categories), blend=blend)

    def ratio(pipeline, **options):
        # "refresh": the category applies, but the answer cached before is not served
        run, _ = answer(pipeline, make_job(documents=DOCS,
                                           blendcache={"cache": "refresh", **options}))
        assert run.info["tokens_recomputed"] == tokens_recomputed(
            pipeline, layout, run.info["recompute_ratio"])
        return run.info["recompute_ratio"]

    assert ratio(pipeline, recompute_ratio=0.3) == 0.3
    assert ratio(pipeline) == 0.5
    assert ratio(make_pipeline(blend=blend)) == 0.2  # no semantic layer, no category


def test_blend_disabled_is_a_plain_prefill_without_chunk_info(make_pipeline, layout,
                                                              full_prefill_answer):
    pipeline = make_pipeline(blend=BlendConfig(enabled=False))
    run, result = answer(pipeline, make_job(documents=DOCS))
    assert (run.cache_status, list(run.info)) == ("miss", ["ttft_ms"])
    assert result.token_ids == full_prefill_answer
    assert pipeline.chunk_cache.stats()["prefills"] == 0
    assert "chunks_total" not in pipeline.metrics


class BrokenTier:
    """A tier whose backing store has failed (as a full disk or a dead Redis would)."""

    name = "broken"

    def __init__(self):
        self.stats = TierStats()

    def get_many(self, keys):
        raise StorageError("disk is gone")

    def put_many(self, items):
        raise StorageError("disk is gone")

    def delete_many(self, keys):
        raise StorageError("disk is gone")

    def __contains__(self, key):
        raise StorageError("disk is gone")


class UnwritableTier(BrokenTier):
    """A tier that reads (empty) but cannot write, as a full disk."""

    name = "unwritable"

    def get_many(self, keys):
        return {}

    def __contains__(self, key):
        return False


# max_missing_share 0.7 fails in the plan (which tier holds a chunk), 1.0 in the lookup.
@pytest.mark.parametrize("max_missing_share", [0.7, 1.0])
def test_a_failing_chunk_cache_degrades_to_a_plain_model_call(make_pipeline, full_prefill_answer,
                                                             max_missing_share):
    pipeline = make_pipeline(blend=BlendConfig(max_missing_share=max_missing_share))
    pipeline.chunk_cache.tiers = [BrokenTier()]
    run, result = answer(pipeline, make_job(documents=DOCS))
    assert (run.cache_status, list(run.info)) == ("miss", ["ttft_ms"])
    assert result.token_ids == full_prefill_answer
    assert pipeline.metrics["cache_failures_chunk"] == 1


def test_a_failing_store_after_the_response_loses_nothing_already_answered(
        make_pipeline, full_prefill_answer):
    pipeline = make_pipeline()
    pipeline.chunk_cache.tiers = [UnwritableTier()]
    run = pipeline.start(make_job(documents=DOCS))
    result = run.finish()
    assert pipeline.metrics["cache_failures_chunk"] == 0
    run.after_response()  # the deferred store fails: counted, not raised
    assert pipeline.metrics["cache_failures_chunk"] == 1
    assert run.info["chunks_deferred"] == 2
    assert result.token_ids == full_prefill_answer


# -- semantic layer (the session's embedder) ----------------------------------------------------


def test_a_repeated_question_is_replayed_from_the_semantic_cache(make_pipeline):
    pipeline = make_pipeline(semantic=SemanticConfig())
    first, answered = answer(pipeline, make_job())
    second, replayed = answer(pipeline, make_job())
    assert (first.cache_status, second.cache_status) == ("miss", "semantic-hit")
    # entry_id: the entry the answer was stored as, then the one that served it
    assert chunk_info(first) == {"category": "default", "entry_id": 1}
    # feedback_id: the response id to judge the served hit by (POST /v1/blendcache/feedback)
    assert chunk_info(second) == {"category": "default", "similarity": 1.0, "entry_id": 1,
                                  "feedback_id": second.id}
    assert (replayed.text, replayed.token_ids, replayed.finish_reason, replayed.prompt_tokens) == (
        answered.text, answered.token_ids, answered.finish_reason, answered.prompt_tokens)
    assert (pipeline.metrics["semantic_misses"], pipeline.metrics["semantic_hits"]) == (1, 1)
    assert pipeline.metrics["completion_tokens"] == MAX_TOKENS  # the replay ran no model


def test_an_empty_answer_is_not_cached(make_pipeline):
    pipeline = make_pipeline(semantic=SemanticConfig())
    _, probe = answer(pipeline, make_job(blendcache={"cache": "off"}))
    # a stop string at the answer's first character leaves nothing of it
    _, cut = answer(pipeline, make_job(stop=probe.text[0]))
    assert (cut.text, cut.finish_reason) == ("", "stop")
    assert sum(pipeline.semantic.stats().entries.values()) == 0
    assert pipeline.start(make_job()).cache_status == "miss"


def test_opting_out_neither_looks_up_nor_stores(make_pipeline):
    pipeline = make_pipeline(semantic=SemanticConfig())
    answer(pipeline, make_job())
    off, _ = answer(pipeline, make_job(blendcache={"cache": "off"}))
    assert (off.cache_status, list(off.info)) == ("miss", ["ttft_ms"])
    stats = pipeline.semantic.stats()
    assert (stats.lookups, sum(stats.entries.values())) == (1, 1)
    assert pipeline.metrics["semantic_misses"] == 1
