"""POST /v1/completions: OpenAI's legacy text completions through the same pipeline as chat.

On the tiny random-weight model: the prompt is continued as is (no chat template), streamed in
``text_completion`` chunks, cached in its own semantic namespace, with documents and the
separator rule; the real ``openai`` client against a loopback server."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from blendcache.chunk_cache.layout import (DocumentSlot, build_layout, format_document,
                                           text_prompt_ids)
from blendcache.config import SemanticConfig, ServerConfig
from blendcache.recompute.generate import SamplingParams, generate

MODEL = "tiny-llama"
URL = "/v1/completions"
PROMPT = "The Eiffel Tower was completed in"
OFF = {"cache": "off"}  # the semantic cache out of the way: every answer from the model


def complete(prompt=PROMPT, **extra):
    return {"model": MODEL, "prompt": prompt, **extra}


def payloads(body: str) -> list:
    frames = body.split("\n\n")
    assert frames[-1] == "" and all(f.startswith("data: ") for f in frames[:-1]), frames
    return [f.removeprefix("data: ") for f in frames[:-1]]


@pytest.fixture
def plain_client(make_app, make_settings):
    """No semantic cache: each request is answered by the model."""
    with TestClient(make_app(make_settings(semantic=SemanticConfig(enabled=False)))) as c:
        yield c


def test_a_completion_continues_the_prompt_as_is(plain_client, tiny_engine):
    r = plain_client.post(URL, json=complete(max_tokens=4))
    assert r.status_code == 200, r.text
    ids = text_prompt_ids(tiny_engine, PROMPT)
    assert ids == tiny_engine.tokenizer.encode(PROMPT)  # no chat template around it
    assert len(ids) < len(tiny_engine.chat_prompt_ids([{"role": "user", "content": PROMPT}]))
    expected = generate(tiny_engine, ids, SamplingParams(max_new_tokens=4))
    body = r.json()
    assert body["id"].startswith("cmpl-") and isinstance(body["created"], int)
    assert r.headers["x-blendcache-cache"] == "miss"
    assert {k: v for k, v in body.items() if k not in ("id", "created", "blendcache")} == {
        "object": "text_completion", "model": MODEL,
        "choices": [{"text": expected.text, "index": 0, "logprobs": None,
                     "finish_reason": "length"}],
        "usage": {"prompt_tokens": len(ids), "completion_tokens": 4,
                  "total_tokens": len(ids) + 4}}
    assert set(body["blendcache"]) == {"cache", "ttft_ms"}


def test_max_tokens_defaults_to_16_as_openai_and_a_prompt_list_of_one_is_its_string(
        plain_client):
    body = plain_client.post(URL, json=complete()).json()
    assert (body["usage"]["completion_tokens"], body["choices"][0]["finish_reason"]) == (
        16, "length")
    listed = plain_client.post(URL, json=complete([PROMPT])).json()
    assert listed["choices"] == body["choices"]


def test_streaming_is_text_completion_chunks_and_matches_non_streaming(plain_client):
    plain = plain_client.post(URL, json=complete(max_tokens=4)).json()
    r = plain_client.post(URL, json=complete(max_tokens=4, stream=True,
                                             stream_options={"include_usage": True}))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-blendcache-cache"] == "miss"
    frames = payloads(r.text)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("cmpl-")
    assert {c["object"] for c in chunks} == {"text_completion"}
    texts = [c["choices"][0] for c in chunks[:-2]]
    assert all(t["finish_reason"] is None and t["logprobs"] is None for t in texts)
    assert "".join(t["text"] for t in texts) == plain["choices"][0]["text"]
    last = chunks[-2]
    assert last["choices"] == [{"text": "", "index": 0, "logprobs": None,
                                "finish_reason": "length"}]
    assert last["blendcache"]["cache"] == "miss"
    assert (chunks[-1]["choices"], chunks[-1]["usage"]) == ([], plain["usage"])


def test_a_repeated_prompt_is_a_semantic_hit_that_chat_never_shares(client):
    first = client.post(URL, json=complete(max_tokens=4))
    second = client.post(URL, json=complete(max_tokens=4))
    assert (first.headers["x-blendcache-cache"], second.headers["x-blendcache-cache"]) == (
        "miss", "semantic-hit")
    assert second.json()["choices"] == first.json()["choices"]
    assert second.json()["usage"]["prompt_tokens"] == first.json()["usage"]["prompt_tokens"]
    # The same text as a chat question: answered by the model, and cached apart.
    chat = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": PROMPT}]}
    assert client.post("/v1/chat/completions", json=chat).headers["x-blendcache-cache"] == "miss"
    again = client.post("/v1/chat/completions", json=chat)
    assert again.headers["x-blendcache-cache"] == "semantic-hit"
    third = client.post(URL, json=complete(max_tokens=4))
    assert third.json()["choices"] == first.json()["choices"]


@pytest.mark.parametrize("extra,param,message", [
    ({"echo": True}, "echo", "echo is not supported: the completion never repeats the prompt"),
    ({"logprobs": 2}, "logprobs", "logprobs are not supported"),
    ({"best_of": 3}, "best_of", "best_of > 1 is not supported: one completion per request"),
    ({"n": 2}, "n", "n > 1 is not supported: one completion per request"),
    ({"suffix": "!"}, "suffix", "suffix (insertion) is not supported"),
    ({"prompt": ["a", "b"]}, "prompt",
     "a batch of 2 prompts is not supported: send one prompt per request"),
    ({"prompt": [1, 2]}, "prompt", "token-id prompts are not supported: send the prompt as text"),
    ({"prompt": [[1, 2]]}, "prompt",
     "token-id prompts are not supported: send the prompt as text"),
    ({"prompt": "  "}, "prompt", "the prompt is empty"),
    ({"max_tokens": 0}, "max_tokens", "Input should be greater than or equal to 1"),
])
def test_what_a_completion_cannot_honour_is_a_400_naming_it(plain_client, extra, param, message):
    r = plain_client.post(URL, json=complete(**extra))
    assert r.status_code == 400
    assert r.json() == {"error": {"message": f"{message} at '{param}'", "param": param,
                                  "type": "invalid_request_error", "code": None}}


def test_unknown_model_and_missing_prompt(plain_client):
    r = plain_client.post(URL, json=complete(model="gpt-3.5-turbo-instruct"))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "model_not_found")
    r = plain_client.post(URL, json={"model": MODEL})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "prompt")


def test_best_of_and_n_of_one_and_an_empty_suffix_are_accepted(plain_client):
    r = plain_client.post(URL, json=complete(max_tokens=1, n=1, best_of=1, suffix="",
                                             echo=False, logprobs=None))
    assert r.status_code == 200, r.text


def test_a_prompt_over_the_context_window_names_the_prompt(plain_client, tiny_engine):
    window = tiny_engine.model.config.max_position_embeddings
    r = plain_client.post(URL, json=complete(" ".join(["word"] * window)))
    assert r.status_code == 400
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (
        "prompt", "context_length_exceeded")


DOCS = ["The Eiffel Tower was completed in 1889.", "Mount Fuji is in Japan."]


def test_documents_open_the_prompt(plain_client, tiny_engine):
    r = plain_client.post(URL, json=complete(max_tokens=4, documents=DOCS))
    assert r.status_code == 200, r.text
    layout = build_layout(tiny_engine, [{"role": "user", "content": PROMPT}],
                          [format_document(d) for d in DOCS], template=False)
    # NOTE: the tiny tokenizer adds no BOS, so nothing precedes the documents to prefill them
    # after: a full prefill answers and no chunk is stored.
    assert layout.prefix == ()
    expected = generate(tiny_engine, layout.ids, SamplingParams(max_new_tokens=4))
    body = r.json()
    assert body["choices"][0]["text"] == expected.text
    assert body["usage"]["prompt_tokens"] == len(layout.ids)
    assert "chunks_total" not in body["blendcache"]


CONTEXT_PROMPT = "Context:\n\n" + "\n\n".join(DOCS) + "\n\nQuestion: when?\nAnswer:"


def test_the_separator_rule_makes_chunks_of_a_prompts_context(make_app, make_settings,
                                                              tiny_engine):
    settings = make_settings(server=ServerConfig(document_separator="\n\n"),
                             semantic=SemanticConfig(enabled=False))
    with TestClient(make_app(settings)) as c:
        first = c.post(URL, json=complete(CONTEXT_PROMPT, max_tokens=4))
        second = c.post(URL, json=complete(CONTEXT_PROMPT, max_tokens=4))
    assert first.status_code == 200, first.text
    assert (first.headers["x-blendcache-cache"], second.headers["x-blendcache-cache"]) == (
        "miss", "blend")
    assert first.json()["blendcache"]["chunks_deferred"] == 2
    info = second.json()["blendcache"]
    assert (info["chunks_reused"], info["chunks_total"]) == (2, 2)
    layout = build_layout(tiny_engine, [{"role": "user", "content": "Context:\n\nQuestion: when?"
                                         "\nAnswer:"}], ["\n\n" + d for d in DOCS],
                          slot=DocumentSlot(0, len("Context:")), template=False)
    assert tiny_engine.tokenizer.decode(layout.ids) == CONTEXT_PROMPT
    assert second.json()["usage"]["prompt_tokens"] == len(layout.ids)


# -- the real openai client -------------------------------------------------------------------

@pytest.fixture
def openai_client(make_app, make_settings):
    from openai import OpenAI

    from blendcache.middleware.server import serving

    settings = make_settings(server=ServerConfig(document_separator="\n\n"),
                             semantic=SemanticConfig(enabled=False))
    with serving(make_app(settings)) as url:
        yield OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_the_openai_client_completes_streams_and_sends_documents(openai_client):
    reply = openai_client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4)
    assert reply.object == "text_completion"
    (choice,) = reply.choices
    assert (choice.index, choice.finish_reason) == (0, "length")
    assert reply.usage.completion_tokens == 4
    stream = openai_client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4,
                                              stream=True)
    assert "".join(chunk.choices[0].text for chunk in stream if chunk.choices) == choice.text
    with_docs = openai_client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4,
                                                 extra_body={"documents": DOCS})
    assert with_docs.usage.prompt_tokens > reply.usage.prompt_tokens


def test_the_openai_client_and_the_separator_rule(openai_client):
    import httpx

    def create():
        return openai_client.completions.with_raw_response.create(
            model=MODEL, prompt=CONTEXT_PROMPT, max_tokens=4)

    def stored_chunks() -> int:
        stats = httpx.get(f"{str(openai_client.base_url).rstrip('/')}/blendcache/stats").json()
        return stats["chunk_cache"]["stored"]["chunks"]

    replies = [create()]
    # The cold request's chunks are stored after its response is sent: wait for them, or the
    # second request may come first (a miss, not the blend this checks).
    deadline = time.monotonic() + 60
    while stored_chunks() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    replies.append(create())
    assert [r.headers["x-blendcache-cache"] for r in replies] == ["miss", "blend"]
    assert replies[1].parse().model_extra["blendcache"]["chunks_reused"] == 2


def test_the_openai_client_raises_bad_request_for_echo(openai_client):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        openai_client.completions.create(model=MODEL, prompt=PROMPT, echo=True)
    assert info.value.body == {"message": "echo is not supported: the completion never repeats "
                                          "the prompt at 'echo'", "type": "invalid_request_error",
                               "param": "echo", "code": None}


