"""``Client`` and ``AsyncClient`` against a real server on loopback (tiny model): typed results
with the cache outcome, streaming, warm-up, stats, invalidation, and the server's errors raised
as the package's."""

import asyncio
import json

import pytest

from blendcache import AsyncClient, Client, Usage, WarmResult
from blendcache.config import TenantConfig
from blendcache.errors import (AuthenticationError, InvalidRequestError, NotFoundError,
                               RequestError, UpstreamError)

Q = "What is the capital of France?"
RAG_Q = "When was the Eiffel Tower completed?"
DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        {"id": "fuji", "text": "Mount Fuji is the highest mountain in Japan."}]


def summary(result) -> tuple:
    return (result.outcome, result.category, result.similarity, result.chunks_reused,
            result.chunks_total)


def test_a_repeated_question_is_a_miss_then_a_semantic_hit(serve):
    with Client(serve() + "/v1") as bc:  # with or without /v1
        first = bc.chat(Q, max_tokens=8)
        second = bc.chat(Q, max_tokens=8)
    assert summary(first) == ("miss", "default", None, None, None)
    assert summary(second) == ("semantic-hit", "default", 1.0, None, None)
    assert second.text == first.text and first.text.strip()
    assert second.entry_id == first.entry_id == 1
    assert first.usage == Usage(**first.raw["usage"]) == second.usage
    assert first.finish_reason == first.raw["choices"][0]["finish_reason"]
    assert isinstance(first.ttft_ms, float) and isinstance(second.ttft_ms, float)


def test_documents_are_a_blend_on_the_second_request(serve):
    with Client(serve()) as bc:
        first = bc.chat(RAG_Q, documents=DOCS, cache="off", max_tokens=4)
        second = bc.chat(RAG_Q, documents=DOCS, cache="off", max_tokens=4)
    assert summary(first) == ("miss", None, None, 0, 2)  # fused from chunks prefilled now
    assert summary(second) == ("blend", None, None, 2, 2)
    assert second.tokens_recomputed == first.tokens_recomputed
    assert second.tokens_recomputed == second.raw["blendcache"]["tokens_recomputed"] > 0
    assert first.entry_id is None  # the semantic cache was off


def test_streamed_pieces_join_to_the_answer(serve):
    with Client(serve()) as bc:
        whole = bc.chat(Q, cache="off", max_tokens=8)
        with bc.stream(Q, cache="off", max_tokens=8) as stream:
            assert stream.outcome == "miss"
            events = list(stream)
        again = bc.stream(Q, max_tokens=8)  # iterated without 'with'
        replayed = "".join(e.text for e in again)
    assert len(events) > 1 and {e.outcome for e in events} == {"miss"}
    assert "".join(e.text for e in events) == whole.text == stream.result.text
    assert stream.result.usage == whole.usage
    assert summary(stream.result) == summary(whole)
    assert again.outcome == "miss" and replayed == whole.text  # cache "on": stored now


def test_warmed_documents_make_the_first_request_a_blend(serve):
    with Client(serve()) as bc:
        assert bc.warm(DOCS, system="Be brief.") == WarmResult(2, 2, 0)
        assert bc.warm(DOCS, system="Be brief.") == WarmResult(2, 0, 2)
        result = bc.chat(RAG_Q, system="Be brief.", documents=DOCS, cache="off", max_tokens=4)
    assert summary(result) == ("blend", None, None, 2, 2)


def test_stats_carry_outcomes_categories_and_entries(serve):
    with Client(serve()) as bc:
        bc.chat(Q, max_tokens=6)
        bc.chat(Q, max_tokens=6)
        bc.chat(RAG_Q, documents=DOCS, cache="off", max_tokens=4)
        stats = bc.stats()
    tenant = stats.tenants["default"]  # an open server: every tenant, both caches
    assert (tenant.requests, tenant.outcomes, tenant.categories) == (
        3, {"miss": 2, "semantic-hit": 1}, {"default": 2, "none": 1})
    assert tenant.hit_rate == pytest.approx(1 / 3)
    assert tenant.semantic_entries == {"default/tiny-llama": 1}
    assert (stats.semantic_cache["lookups"], stats.semantic_cache["hits"]) == (2, 1)
    assert stats.chunk_cache["prefills"] == stats.raw["chunk_cache"]["prefills"] > 0
    assert stats.requests["requests"] == 3


def test_invalidation_makes_the_next_request_a_miss(serve):
    with Client(serve()) as bc:
        first = bc.chat(Q, max_tokens=6)
        assert bc.invalidate(first.entry_id) == 1
        again = bc.chat(Q, max_tokens=6)
        assert again.outcome == "miss"
        assert bc.chat(Q, max_tokens=6).outcome == "semantic-hit"
        assert bc.invalidate(category="default") == 1
        assert bc.chat(Q, max_tokens=6).outcome == "miss"
        assert bc.invalidate() == 1
        assert bc.chat(Q, max_tokens=6).outcome == "miss"
        with pytest.raises(NotFoundError) as info:
            bc.invalidate(again.entry_id)
        with pytest.raises(ValueError):
            bc.invalidate(1, category="default")
    assert (info.value.status_code, info.value.code, info.value.param) == (
        404, "entry_not_found", "entry_id")
    assert info.value.message == f"no semantic cache entry {again.entry_id}"


def test_server_errors_are_raised_as_the_package_errors(serve, sdk_settings):
    url = serve(sdk_settings(tenants=(TenantConfig("acme", api_keys=("sk-acme",)),)))
    with Client(url, api_key="sk-wrong") as bc:
        with pytest.raises(AuthenticationError) as info:
            bc.chat(Q)
        with pytest.raises(AuthenticationError):
            bc.stream(Q).__enter__()
    assert (info.value.status_code, info.value.code, info.value.message) == (
        401, "invalid_api_key", "invalid API key")
    with Client(url, api_key="sk-acme") as bc:
        assert bc.chat(Q, max_tokens=2).outcome == "miss"
        with pytest.raises(NotFoundError) as missing:
            bc.chat(Q, model="gpt-9")
        with pytest.raises(InvalidRequestError) as bad:
            bc.chat(Q, category="nope")
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    assert bad.value.status_code == 400 and "unknown category 'nope'" in bad.value.message
    with Client("http://127.0.0.1:1", timeout_s=5) as down:
        with pytest.raises(UpstreamError) as unreachable:
            down.stats()
    assert (unreachable.value.status_code, unreachable.value.code) == (502, "connection_error")


def test_a_4xx_without_a_class_of_its_own_keeps_its_status_and_type(serve, sdk_settings):
    from blendcache.config import ServerConfig

    with Client(serve(sdk_settings(server=ServerConfig(max_body_bytes=2000)))) as bc:
        with pytest.raises(RequestError) as info:
            bc.chat("x" * 3000)
    # 413 has no class: its error type (invalid_request_error) picks one, the status stays.
    assert (type(info.value), info.value.status_code) == (InvalidRequestError, 413)
    assert info.value.message == "request body exceeds 2000 bytes"


def test_async_client_gives_the_same_results(serve, sdk_settings):
    url = serve()
    keyed = serve(sdk_settings("keyed", tenants=(TenantConfig("acme", api_keys=("sk-a",)),)))

    async def scenario():
        async with AsyncClient(url) as bc:
            first = await bc.chat(Q, max_tokens=8)
            second = await bc.chat(Q, max_tokens=8)
            async with bc.stream(Q, cache="off", max_tokens=8) as stream:
                pieces = [e.text async for e in stream]
            rag = [await bc.chat(RAG_Q, documents=DOCS, cache="off", max_tokens=4)
                   for _ in range(2)]
            warmed = await bc.warm(DOCS)
            stats = await bc.stats()
            deleted = await bc.invalidate(first.entry_id)
            after = await bc.chat(Q, max_tokens=8)
            models = await bc.models()
        async with AsyncClient(keyed, api_key="sk-wrong") as wrong:
            with pytest.raises(AuthenticationError) as info:
                await wrong.chat(Q)
        return first, second, stream, pieces, rag, warmed, stats, deleted, after, models, info

    (first, second, stream, pieces, rag, warmed, stats, deleted, after, models,
     info) = asyncio.run(scenario())
    assert [summary(r) for r in (first, second, *rag, after)] == [
        ("miss", "default", None, None, None), ("semantic-hit", "default", 1.0, None, None),
        ("miss", None, None, 0, 2), ("blend", None, None, 2, 2),
        ("miss", "default", None, None, None)]
    assert "".join(pieces) == stream.result.text == first.text == second.text
    assert warmed == WarmResult(2, 0, 2) and deleted == 1 and models == ["tiny-llama"]
    assert stats.tenants["default"].outcomes == {"miss": 3, "semantic-hit": 1, "blend": 1}
    assert (info.value.status_code, info.value.code) == (401, "invalid_api_key")


def test_a_5xx_and_an_error_event_mid_stream_are_raised():
    """A real server that fails: a 500 in OpenAI's shape, and a stream that breaks off with an
    error event after its first piece (as the proxy's ``guarded`` streams do)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    from blendcache.middleware.server import serving

    failing = {"message": "database is locked", "type": "server_error", "param": None,
               "code": None}
    refused = {"message": "document 0 is too long", "type": "invalid_request_error",
               "param": "documents.0", "code": "document_too_long"}
    broken = FastAPI()

    @broken.get("/v1/blendcache/stats")
    def stats():
        return JSONResponse({"error": failing}, 500)

    @broken.post("/v1/chat/completions")
    def chat():
        first = {"choices": [{"index": 0, "delta": {"content": "Paris"}}]}
        events = [f"data: {json.dumps(first)}\n\n", f"data: {json.dumps({'error': refused})}\n\n"]
        return StreamingResponse(iter(events), media_type="text/event-stream",
                                 headers={"x-blendcache-cache": "miss"})

    with serving(broken) as url, Client(url) as bc:
        with pytest.raises(UpstreamError) as info:
            bc.stats()
        pieces = []
        with pytest.raises(InvalidRequestError) as mid_stream:
            for event in bc.stream(Q):
                pieces.append(event.text)
    assert (info.value.status_code, str(info.value), info.value.body) == (
        500, "database is locked", {"error": failing})
    assert pieces == ["Paris"]
    assert (mid_stream.value.status_code, mid_stream.value.param, mid_stream.value.code) == (
        400, "documents.0", "document_too_long")
