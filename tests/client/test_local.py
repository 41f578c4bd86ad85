"""``BlendCache`` in process gives what ``Client`` gets from a server: the same calls on the
same settings, model and requests return equal results (the server's time to first token
aside)."""

import dataclasses

import pytest

from blendcache import BlendCache, Client
from blendcache.errors import ConfigError, InvalidRequestError, NotFoundError

Q = "What is the capital of France?"
RAG_Q = "When was the Eiffel Tower completed?"
DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        {"id": "fuji", "text": "Mount Fuji is the highest mountain in Japan."}]


def scenario(bc) -> list:
    """Every call of the SDK once, in an order whose outcomes are known."""
    out = [bc.chat(Q, max_tokens=8), bc.chat(Q, max_tokens=8)]  # miss, semantic-hit
    with bc.stream(Q, cache="off", max_tokens=8) as stream:
        out.append(("stream", stream.outcome, "".join(e.text for e in stream)))
    out.append(stream.result)
    out.append(bc.warm(DOCS, system="Be brief."))
    out.append(bc.chat(RAG_Q, system="Be brief.", documents=DOCS, cache="off", max_tokens=4))
    out.append(bc.invalidate(out[0].entry_id))
    out.append(bc.chat(Q, max_tokens=8))  # a miss again
    out.append(bc.invalidate(category="default"))
    tenant = bc.stats().tenants["default"]
    out.append((tenant.requests, tenant.outcomes, tenant.categories, tenant.semantic_entries))
    return [dataclasses.replace(r, ttft_ms=None) if hasattr(r, "ttft_ms") else r for r in out]


def test_in_process_results_equal_the_servers(serve, sdk_settings, tiny_engine, embedder):
    with Client(serve(sdk_settings("server"))) as client:
        over_http = scenario(client)
    with BlendCache(sdk_settings("local"), engine=tiny_engine, embedder=embedder) as local:
        in_process = scenario(local)
    assert in_process == over_http
    outcomes = [r.outcome for r in in_process if hasattr(r, "outcome")]
    assert outcomes == ["miss", "semantic-hit", "miss", "blend", "miss"]
    assert in_process[2][:2] == ("stream", "miss")
    assert in_process[2][2] == in_process[3].text == in_process[0].text
    assert in_process[5].chunks_reused == 2 and in_process[6] == 1 and in_process[8] == 1
    # Five requests; the semantic cache emptied by the last invalidation.
    assert in_process[9] == (5, {"miss": 3, "semantic-hit": 1, "blend": 1},
                             {"default": 3, "none": 2}, {})


def test_in_process_errors_are_the_servers(sdk_settings, tiny_engine, embedder):
    bc = BlendCache(sdk_settings(), engine=tiny_engine, embedder=embedder)
    with pytest.raises(NotFoundError) as missing:
        bc.chat(Q, model="gpt-9")
    with pytest.raises(InvalidRequestError) as bad:
        bc.chat(Q, max_tokens=0)
    with pytest.raises(NotFoundError) as unknown:
        bc.invalidate(42)
    assert missing.value.code == "model_not_found"
    assert bad.value.param == "max_tokens"
    assert unknown.value.code == "entry_not_found"
    with pytest.raises(ConfigError, match="has 9 layers"):
        from blendcache.config import BlendConfig

        BlendCache(sdk_settings(blend=BlendConfig(check_layers=(2, 9))), engine=tiny_engine,
                   embedder=embedder)
