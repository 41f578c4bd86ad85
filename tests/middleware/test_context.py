"""A request's documents (middleware/context.py): the ``documents`` field, or the separator rule
for apps that cannot add a field, cutting them out of a system or user message's text.

The rule on its own (exact messages, documents and slots), then through the chat API and the
real ``openai`` client on the tiny model: the prompt is the one the app sent, and its context
pieces are cached as chunks."""

import pytest
from fastapi.testclient import TestClient

from blendcache.chunk_cache.layout import DocumentSlot, build_layout
from blendcache.config import SemanticConfig, ServerConfig
from blendcache.errors import InvalidRequestError
from blendcache.middleware.context import RequestContext, request_context

SEP = "\n\n"  # LangChain's stuff-documents joiner
RULE = ServerConfig(document_separator=SEP)
DOC_A = "The Eiffel Tower was completed in 1889."
DOC_B = "Mount Fuji is the highest mountain in Japan."
# LangChain's create_stuff_documents_chain with a system prompt "...{context}".
LANGCHAIN = [{"role": "system", "content": f"Answer from this context:{SEP}{DOC_A}{SEP}{DOC_B}"},
             {"role": "user", "content": "When was the Eiffel Tower completed?"}]
# A "Context: ... Question: ..." prompt in one user message.
CONTEXT_QUESTION = [{"role": "user", "content": f"Context:{SEP}{DOC_A}{SEP}{DOC_B}{SEP}"
                                                "Question: when was it completed?"}]


def test_the_rule_is_off_by_default():
    assert request_context(LANGCHAIN, [], ServerConfig()) == RequestContext(LANGCHAIN, [])


def test_the_context_of_a_system_prompt_is_every_piece_after_the_first():
    got = request_context(LANGCHAIN, [], RULE)
    assert got == RequestContext(
        [{"role": "system", "content": "Answer from this context:"}, LANGCHAIN[1]],
        [SEP + DOC_A, SEP + DOC_B], DocumentSlot(0, len("Answer from this context:")))


def test_the_context_of_a_user_message_is_between_its_first_and_last_pieces():
    got = request_context(CONTEXT_QUESTION, [], RULE)
    assert got == RequestContext(
        [{"role": "user", "content": f"Context:{SEP}Question: when was it completed?"}],
        [SEP + DOC_A, SEP + DOC_B], DocumentSlot(0, len("Context:")))


def test_a_user_message_needs_two_separators_else_the_system_prompt_carries():
    one = [{"role": "system", "content": f"Be brief.{SEP}{DOC_A}"},
           {"role": "user", "content": f"Two paragraphs:{SEP}the question?"}]
    got = request_context(one, [], RULE)
    assert (got.documents, got.slot) == ([SEP + DOC_A], DocumentSlot(0, len("Be brief.")))
    assert got.messages[1] == one[1]
    nothing = [{"role": "user", "content": f"Two paragraphs:{SEP}the question?"}]
    assert request_context(nothing, [], RULE) == RequestContext(nothing, [])


def test_any_separator_a_line_of_dashes():
    rule = ServerConfig(document_separator="\n---\n")
    messages = [{"role": "developer", "content": f"Context\n---\n{DOC_A}\n---\n{DOC_B}"}]
    got = request_context(messages, [], rule)
    assert (got.documents, got.slot) == (
        ["\n---\n" + DOC_A, "\n---\n" + DOC_B], DocumentSlot(0, len("Context")))


def test_an_upstream_gets_the_messages_as_sent():
    assert request_context(LANGCHAIN, [], RULE, split=False) == RequestContext(LANGCHAIN, [])


def test_the_documents_field_wins_over_the_rule():
    got = request_context(LANGCHAIN, [DOC_A], RULE)
    assert got == RequestContext(LANGCHAIN, [DOC_A + "\n\n"])


@pytest.mark.parametrize("server,message,code", [
    (ServerConfig(document_separator=SEP, max_documents=1),
     "messages.0.content splits into 2 documents on [server] document_separator: more than "
     "[server] max_documents (1)", "too_many_documents"),
    (ServerConfig(document_separator=SEP, max_document_chars=len(DOC_B) - 1),
     f"document 1 of messages.0.content has {len(DOC_B)} characters: more than [server] "
     f"max_document_chars ({len(DOC_B) - 1})", "document_too_long"),
])
def test_the_limits_hold_for_split_documents(server, message, code):
    with pytest.raises(InvalidRequestError) as info:
        request_context(LANGCHAIN, [], server)
    assert (info.value.message, info.value.param, info.value.code) == (
        message, "messages.0.content", code)


@pytest.mark.parametrize("messages", [LANGCHAIN, CONTEXT_QUESTION])
def test_the_laid_out_prompt_is_the_one_the_app_sent(tiny_engine, messages):
    got = request_context(messages, [], RULE)
    layout = build_layout(tiny_engine, got.messages, got.documents, slot=got.slot)
    sent = tiny_engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                     tokenize=False)
    assert tiny_engine.tokenizer.decode(layout.ids) == sent
    assert len(layout.chunks) == 2


# -- through the chat API ---------------------------------------------------------------------

def chat(messages, **extra):
    return {"model": "tiny-llama", "messages": messages, "max_tokens": 4,
            "blendcache": {"cache": "off"}, **extra}


@pytest.fixture
def rule_client(make_app, make_settings):
    settings = make_settings(server=RULE, semantic=SemanticConfig(enabled=False))
    with TestClient(make_app(settings)) as c:
        yield c


@pytest.mark.parametrize("messages", [LANGCHAIN, CONTEXT_QUESTION])
def test_split_documents_are_stored_then_reused(rule_client, tiny_engine, messages):
    first = rule_client.post("/v1/chat/completions", json=chat(messages))
    second = rule_client.post("/v1/chat/completions", json=chat(messages))
    assert first.status_code == 200, first.text
    assert (first.headers["x-blendcache-cache"], second.headers["x-blendcache-cache"]) == (
        "miss", "blend")
    assert first.json()["blendcache"]["chunks_deferred"] == 2
    info = second.json()["blendcache"]
    assert (info["chunks_reused"], info["chunks_total"]) == (2, 2)
    got = request_context(messages, [], RULE)
    layout = build_layout(tiny_engine, got.messages, got.documents, slot=got.slot)
    assert second.json()["usage"]["prompt_tokens"] == len(layout.ids)


def test_a_system_prompt_with_context_needs_no_user_message(rule_client):
    r = rule_client.post("/v1/chat/completions", json=chat(LANGCHAIN[:1]))
    assert r.status_code == 200, r.text
    assert r.json()["blendcache"]["chunks_total"] == 2


def test_without_the_rule_the_same_request_has_no_chunks(client):
    r = client.post("/v1/chat/completions", json=chat(LANGCHAIN))
    assert "chunks_total" not in r.json()["blendcache"]


# -- the real openai client -------------------------------------------------------------------

def test_the_openai_client_with_the_rule_and_with_extra_body_documents(make_app, make_settings):
    from openai import OpenAI

    from blendcache.middleware.server import serving

    settings = make_settings(server=RULE, semantic=SemanticConfig(enabled=False))
    with serving(make_app(settings)) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        create = client.chat.completions.with_raw_response.create
        split = [create(model="tiny-llama", messages=LANGCHAIN, max_tokens=4) for _ in range(2)]
        assert [r.headers["x-blendcache-cache"] for r in split] == ["miss", "blend"]
        reply = split[1].parse()
        assert reply.model_extra["blendcache"]["chunks_reused"] == 2
        assert reply.choices[0].finish_reason == "length"
        question = LANGCHAIN[1:]
        fielded = [create(model="tiny-llama", messages=question, max_tokens=4,
                          extra_body={"documents": [DOC_A, DOC_B]}) for _ in range(2)]
        assert [r.headers["x-blendcache-cache"] for r in fielded] == ["miss", "blend"]
        stream = client.chat.completions.create(model="tiny-llama", messages=LANGCHAIN,
                                                max_tokens=4, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == reply.choices[0].message.content
