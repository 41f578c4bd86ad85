"""``feedback(response_id, correct)`` of ``Client``, ``AsyncClient`` and ``BlendCache``: the
response id of a served semantic hit (``ChatResult.id``) judged once, by its own tenant."""

import asyncio

import pytest

from blendcache import AsyncClient, BlendCache, Client
from blendcache.client import FeedbackResult, wire
from blendcache.errors import NotFoundError

Q = "What is the capital of France?"


def judged_twice(bc) -> tuple:
    first, hit = bc.chat(Q, max_tokens=8), bc.chat(Q, max_tokens=8)
    assert (first.outcome, hit.outcome) == ("miss", "semantic-hit")
    assert hit.id and hit.id == hit.raw["blendcache"]["feedback_id"] != first.id
    recorded = bc.feedback(hit.id, False)
    with pytest.raises(NotFoundError) as again:
        bc.feedback(hit.id, True)
    with pytest.raises(NotFoundError):
        bc.feedback(first.id, True)  # a miss: nothing cached was served
    return recorded, hit.entry_id, again.value.code


def test_client_feedback_on_a_served_hit(serve):
    with Client(serve()) as bc:
        recorded, entry_id, code = judged_twice(bc)
    assert isinstance(recorded, FeedbackResult)
    assert (recorded.correct, recorded.entry_id, recorded.category) == (False, entry_id,
                                                                        "default")
    assert code == "response_not_found"


def test_async_client_feedback(serve):
    async def go():
        async with AsyncClient(serve()) as bc:
            hit = [await bc.chat(Q, max_tokens=8) for _ in range(2)][1]
            return hit, await bc.feedback(hit.id, True)

    hit, recorded = asyncio.run(go())
    assert recorded == FeedbackResult(hit.id, True, hit.entry_id, "default")


def test_in_process_feedback_matches_the_server(sdk_settings, tiny_engine, embedder):
    with BlendCache(sdk_settings("local"), engine=tiny_engine, embedder=embedder) as bc:
        recorded, entry_id, code = judged_twice(bc)
        with bc.stream(Q, max_tokens=8) as stream:
            "".join(e.text for e in stream)
        assert stream.result.outcome == "semantic-hit" and stream.result.id.startswith(
            "chatcmpl-")
        stats = bc.pipeline.semantic.stats().guarantee["default"]
    assert (recorded.correct, recorded.entry_id, code) == (False, entry_id, "response_not_found")
    assert stats["feedback_wrong"] == 1


def test_feedback_wants_a_boolean():
    with pytest.raises(TypeError, match="True or False"):
        wire.feedback_call("chatcmpl-1", "yes")
