"""The SDK's ``lookup``/``store`` (the semantic cache without a model call): ``Client``,
``AsyncClient`` and in-process ``BlendCache`` answer alike, and bad input is the package's
error."""

import asyncio
import dataclasses

import pytest

from blendcache import AsyncClient, BlendCache, Client, LookupResult
from blendcache.errors import InvalidRequestError

Q = "What is the capital of France?"
CONTEXT = [{"role": "system", "content": "Answer in one word."}]
DOCS = ["Paris is the capital of France.", {"id": "de", "text": "Berlin is in Germany."}]


def _no_feedback_id(found):
    """A hit's feedback id is random: checked, then left out of the comparison."""
    if isinstance(found, LookupResult) and found.hit:
        assert found.feedback_id.startswith("lookup-")
        return dataclasses.replace(found, feedback_id=None)
    return found


def scenario(bc) -> list:
    return [_no_feedback_id(x) for x in scenario_raw(bc)]


def scenario_raw(bc) -> list:
    return [bc.lookup(Q, model="lc:1"),
            bc.store(Q, "Paris.", model="lc:1", context=CONTEXT, documents=DOCS),
            bc.lookup(Q, model="lc:1"),  # no context: another key
            bc.lookup(Q, model="lc:1", context=CONTEXT, documents=DOCS[::-1]),
            bc.lookup(Q, model="lc:2", context=CONTEXT, documents=DOCS),
            bc.lookup(Q, model="lc:1", context=CONTEXT, documents=DOCS, category="default")]


MISS, HIT = LookupResult(False, category="default"), LookupResult(True, "Paris.", 1.0, 1, "default")
EXPECTED = [MISS, 1, MISS, HIT, MISS, HIT]


def test_client_async_client_and_in_process_answer_alike(serve, sdk_settings, tiny_engine,
                                                         embedder):
    with Client(serve(sdk_settings("http"))) as client:
        assert scenario(client) == EXPECTED

    async def run_async(url):
        async with AsyncClient(url) as bc:
            first = await bc.lookup(Q, model="lc:1")
            entry_id = await bc.store(Q, "Paris.", model="lc:1")
            return [_no_feedback_id(x) for x in
                    (first, entry_id, await bc.lookup(Q, model="lc:1"))]

    assert asyncio.run(run_async(serve(sdk_settings("async")))) == [MISS, 1, HIT]
    with BlendCache(sdk_settings("local"), engine=tiny_engine, embedder=embedder) as local:
        assert scenario(local) == EXPECTED


@pytest.mark.parametrize("call", [
    lambda bc: bc.lookup(" "),
    lambda bc: bc.store(Q, ""),
    lambda bc: bc.lookup(Q, category="nope"),
    lambda bc: bc.lookup(Q, context=[{"role": "robot", "content": "x"}]),
])
def test_bad_input_is_an_invalid_request_error(serve, sdk_settings, tiny_engine, embedder, call):
    with Client(serve()) as client, pytest.raises(InvalidRequestError) as remote:
        call(client)
    with BlendCache(sdk_settings("local"), engine=tiny_engine, embedder=embedder) as local, \
            pytest.raises(InvalidRequestError) as in_process:
        call(local)
    assert remote.value.param == in_process.value.param
