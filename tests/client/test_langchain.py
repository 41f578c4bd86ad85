"""The LangChain integration against a real server on loopback (tiny model): the
``set_llm_cache`` cache (repeats served without a model request; LLM parameters, context,
category and tenant keep answers apart) and the chat model in an LCEL chain (documents sent as
``documents``: a second question over them is a ``blend``), and the example run end to end."""

import asyncio
import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.globals import set_llm_cache  # noqa: E402
from langchain_core.language_models.fake import FakeListLLM  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import RunnableLambda, RunnablePassthrough  # noqa: E402

from blendcache import AsyncClient, BlendCache, Client  # noqa: E402
from blendcache.client.langchain import (DOCUMENT_SEPARATOR, BlendCacheLLMCache,  # noqa: E402
                                         ChatBlendCache, format_documents, llm_namespace,
                                         split_documents)
from blendcache.config import CategoryConfig, SemanticConfig, TenantConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

Q = "What is the capital of France?"
DOCS = [Document(page_content="The Eiffel Tower was completed in 1889 in Paris."),
        Document(page_content="Mount Fuji is the highest mountain in Japan."),
        Document(page_content="The Danube flows through ten countries.")]
PROMPT = ChatPromptTemplate.from_messages([("system", "Answer briefly."),
                                           ("human", "{context}Question: {question}")])


@pytest.fixture
def llm_cache():
    """``llm_cache(cache)``: LangChain's global cache for the test, unset after it."""
    yield set_llm_cache
    set_llm_cache(None)


def fake(*responses) -> FakeListChatModel:
    return FakeListChatModel(responses=list(responses) or ["one", "two", "three", "four"])


def test_a_repeat_is_served_from_cache_without_a_model_request(serve, llm_cache):
    url = serve()
    with Client(url) as bc:
        llm_cache(BlendCacheLLMCache(bc))
        llm = ChatBlendCache(base_url=url, max_tokens=6)
        first, second = llm.invoke(Q), llm.invoke(Q)
        stats = bc.stats()
    assert first.response_metadata["blendcache"]["outcome"] == "miss"
    assert second.content == first.content and first.content.strip()
    assert stats.tenants["default"].requests == 1  # the repeat never reached the chat route
    assert stats.semantic_cache["hits"] == 1
    # kept under the LangChain model's own namespace
    spaces = {space.split("/")[-1] for space in stats.tenants["default"].semantic_entries}
    assert spaces == {"tiny-llama", llm_namespace(llm._get_llm_string())}


def test_other_llm_parameters_miss_and_text_prompts_hit(serve, llm_cache):
    with Client(serve()) as bc:
        llm_cache(BlendCacheLLMCache(bc))
        llm = fake()
        assert [llm.invoke(Q).content for _ in range(2)] == ["one", "one"]
        assert llm.invoke(Q, stop=["."]).content == "two"  # other call parameters
        assert fake("other").invoke(Q).content == "other"  # another model
        text = FakeListLLM(responses=["alpha", "beta"])
        assert [text.invoke(Q), text.invoke(Q)] == ["alpha", "alpha"]


def test_the_cache_in_process(tiny_engine, embedder, sdk_settings, llm_cache):
    with BlendCache(sdk_settings("local"), engine=tiny_engine, embedder=embedder) as local:
        cache = BlendCacheLLMCache(local, category="default")
        llm_cache(cache)
        llm = fake()
        assert [llm.invoke(Q).content, llm.invoke(Q).content] == ["one", "one"]
        cache.clear()
        assert llm.invoke(Q).content == "two"
        assert local.stats().semantic_cache["hits"] == 1


def test_a_bounded_category_learns_from_the_answers_of_langchains_model(
        tiny_engine, embedder, sdk_settings, llm_cache):
    """max_error_rate: a lookup that explores is a miss whose id goes back with the model's
    answer, and the server's comparison is the category's evidence."""
    semantic = SemanticConfig(categories=(CategoryConfig(
        "faq", max_error_rate=0.05, audit_rate=0.0, context_sensitive=False),),
        default_category="faq")
    with BlendCache(sdk_settings("local", semantic=semantic), engine=tiny_engine,
                    embedder=embedder) as local:
        cache = BlendCacheLLMCache(local, category="faq")
        llm_cache(cache)
        llm = fake("Paris.", "Paris.", "Lyon.")
        assert llm.invoke(Q).content == "Paris."  # cold: stored
        assert llm.invoke(Q).content == "Paris."  # explored: the model answered, compared
        assert llm.invoke(Q).content == "Lyon."  # explored again: disagrees
        guarantee = local.pipeline.semantic.stats().guarantee["faq"]
        assert (guarantee["explore_correct"], guarantee["explore_wrong"]) == (1, 1)
        assert not cache._explorations  # each id went back once
        assert local.pipeline.metrics["semantic_explorations"] == 2


def test_earlier_messages_are_the_context(serve, llm_cache):
    with Client(serve()) as bc:
        llm_cache(BlendCacheLLMCache(bc))
        llm = fake()
        chat = [SystemMessage("Answer in French."), HumanMessage("Hi"), AIMessage("Salut!"),
                HumanMessage(Q)]
        assert llm.invoke(chat).content == "one"
        assert llm.invoke(chat).content == "one"  # the same conversation: a hit
        assert llm.invoke(chat[1:]).content == "two"  # another system prompt
        assert llm.invoke([HumanMessage(Q)]).content == "three"  # no earlier turns
        found = bc.lookup(Q, model=llm_namespace(llm._get_llm_string()),
                          context=[{"role": "system", "content": "Answer in French."},
                                   {"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "Salut!"}])
        assert (found.hit, found.answer) == (True, "one")  # the query is the last human turn


def test_formatted_documents_are_the_context_and_not_the_query(serve, llm_cache):
    with Client(serve()) as bc:
        llm_cache(BlendCacheLLMCache(bc))
        llm = fake()
        rag = chain(llm)
        assert [rag.invoke(Q).content, rag.invoke(Q).content] == ["one", "one"]
        assert chain(llm, DOCS[::-1]).invoke(Q).content == "one"  # the same set
        assert chain(llm, DOCS[:2]).invoke(Q).content == "two"  # another set
        texts = [d.page_content for d in DOCS]
        found = bc.lookup(f"Question: {Q}", model=llm_namespace(llm._get_llm_string()),
                          context=[{"role": "system", "content": "Answer briefly."}],
                          documents=texts)
        assert (found.hit, found.answer) == (True, "one")


def test_categories_are_apart_and_clear_forgets_its_own(serve, sdk_settings, llm_cache):
    semantic = SemanticConfig(categories=(CategoryConfig("default"), CategoryConfig("faq")))
    with Client(serve(sdk_settings(semantic=semantic))) as bc:
        faq, default = BlendCacheLLMCache(bc, category="faq"), BlendCacheLLMCache(bc)
        llm = fake()
        llm_cache(faq)
        assert [llm.invoke(Q).content, llm.invoke(Q).content] == ["one", "one"]
        llm_cache(default)
        assert [llm.invoke(Q).content, llm.invoke(Q).content] == ["two", "two"]
        faq.clear()
        llm_cache(faq)
        assert llm.invoke(Q).content == "three"  # forgotten
        llm_cache(default)
        assert llm.invoke(Q).content == "two"  # kept


def test_tenants_never_share_answers(serve, sdk_settings, llm_cache):
    tenants = (TenantConfig("acme", api_keys=("sk-acme",)),
               TenantConfig("globex", api_keys=("sk-globex",)))
    url = serve(sdk_settings(tenants=tenants))
    with Client(url, api_key="sk-acme") as acme, Client(url, api_key="sk-globex") as globex:
        llm = fake()
        llm_cache(BlendCacheLLMCache(acme))
        assert [llm.invoke(Q).content, llm.invoke(Q).content] == ["one", "one"]
        llm_cache(BlendCacheLLMCache(globex))
        assert [llm.invoke(Q).content, llm.invoke(Q).content] == ["two", "two"]


def test_the_async_cache_and_model(serve, llm_cache):
    url = serve()

    async def scenario():
        async with AsyncClient(url) as bc:
            with Client(url) as sync:
                llm_cache(BlendCacheLLMCache(sync, async_client=bc))
                llm = fake()
                cached = [(await llm.ainvoke(Q)).content, (await llm.ainvoke(Q)).content]
            set_llm_cache(None)
            answer = await ChatBlendCache(base_url=url, max_tokens=4).ainvoke(
                PROMPT.invoke({"context": format_documents(DOCS), "question": Q}))
            return cached, answer

    cached, answer = asyncio.run(scenario())
    assert cached == ["one", "one"]
    info = answer.response_metadata["blendcache"]
    assert (info["outcome"], info["chunks_total"]) == ("miss", 3)


def chain(llm, documents=DOCS):
    retriever = RunnableLambda(lambda _question: documents)
    return ({"context": retriever | format_documents, "question": RunnablePassthrough()}
            | PROMPT | llm)


def test_an_lcel_chain_gets_chunk_fusion(serve):
    rag = chain(ChatBlendCache(base_url=serve(), max_tokens=4))
    first = rag.invoke("When was the Eiffel Tower completed?")
    second = rag.invoke("Which mountain is the highest in Japan?")
    again = rag.invoke("When was the Eiffel Tower completed?")
    outcomes = [m.response_metadata["blendcache"] for m in (first, second, again)]
    assert [(i["outcome"], i["chunks_reused"], i["chunks_total"]) for i in outcomes] == [
        ("miss", 0, 3), ("blend", 3, 3), ("semantic-hit", None, None)]
    assert outcomes[1]["tokens_recomputed"] > 0 and outcomes[1]["ttft_ms"] > 0
    assert again.content == first.content
    assert first.usage_metadata["total_tokens"] > 0


def test_documents_as_a_call_option_and_a_streamed_answer(serve, tiny_engine, embedder,
                                                          sdk_settings):
    texts = [d.page_content for d in DOCS]
    local = BlendCache(sdk_settings("local"), engine=tiny_engine, embedder=embedder)
    for llm in (ChatBlendCache(base_url=serve(), max_tokens=4),
                ChatBlendCache(client=local, max_tokens=4)):
        bound = llm.bind(documents=DOCS, cache="off")
        assert bound.invoke("When was it built?").response_metadata["blendcache"][
            "outcome"] == "miss"
        pieces = list(llm.stream("Where is Mount Fuji?", documents=texts, cache="off"))
        streamed = "".join(p.content for p in pieces)
        info = pieces[-1].response_metadata["blendcache"]
        assert (info["outcome"], info["chunks_reused"]) == ("blend", 3)
        whole = llm.invoke("Where is Mount Fuji?", documents=texts, cache="off")
        assert streamed == whole.content and len(pieces) > 2


def test_format_documents_round_trips_through_the_message_text():
    text = PROMPT.invoke({"context": format_documents(DOCS), "question": Q}).to_messages()
    messages = [{"role": "system", "content": text[0].content},
                {"role": "user", "content": text[1].content}]
    kept, documents = split_documents(messages)
    assert documents == [d.page_content for d in DOCS]
    assert kept[1]["content"] == f"Question: {Q}" and kept[0] == messages[0]
    assert format_documents([]) == "" and DOCUMENT_SEPARATOR not in kept[1]["content"]
    assert split_documents([{"role": "user", "content": "a\x1eb"}])[1] == []  # one separator


def test_the_module_names_the_extra_without_langchain(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_core.caches", None)
    monkeypatch.delitem(sys.modules, "blendcache.client.langchain")
    with pytest.raises(ImportError, match=r"pip install 'blendcache\[langchain\]'"):
        importlib.import_module("blendcache.client.langchain")


def load_example():
    spec = importlib.util.spec_from_file_location("langchain_rag",
                                                  REPO / "examples" / "langchain_rag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_runs_twice_and_the_second_run_is_cached(serve, tmp_path, capsys):
    records = [{"question": f"unused {i}", "ctxs": []} if i % 2 == 0 else {
        "question": question, "ctxs": [{"title": t, "text": text} for t, text in ctxs]}
        for i, (question, ctxs) in enumerate([
            (None, None),
            ("When was the Eiffel Tower completed?",
             [("Eiffel Tower", "The Eiffel Tower in Paris was completed in 1889."),
              ("Louvre", "The Louvre in Paris is the world's most-visited museum.")]),
            (None, None),
            ("How high is Mount Fuji?",
             [("Mount Fuji", "Mount Fuji in Japan is 3,776 metres high."),
              ("Lake Biwa", "Lake Biwa is the largest lake in Japan.")])])]
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps(records))
    example = load_example()
    assert example.main(["--url", serve(), "--corpus", str(corpus), "--max-tokens", "4"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[")]
    outcomes = [line[1:].split(",")[0].split("]")[0] for line in lines]
    assert outcomes == ["miss", "blend", "miss", "blend"] + ["semantic-hit"] * 4, out
    assert "about Louvre?" in lines[1] and "chunks reused 2/2" in lines[1]
    assert "== run 2: 4/4 answered from the semantic cache; run 1: 2/2 follow-up" in out
    missing = example.main(["--url", "http://127.0.0.1:9", "--data-dir", str(tmp_path)])
    assert missing == 2


def test_a_client_of_its_own_needs_no_exploration_id(llm_cache):
    """The cache takes anything with lookup/store/invalidate: without an exploration the
    store call carries no exploration_id, so an older or custom client keeps working."""
    from blendcache.client.results import LookupResult

    class Minimal:
        def __init__(self):
            self.answers = {}

        def lookup(self, query, *, model, category, context, documents):
            found = self.answers.get((model, query))
            return LookupResult(found is not None, found)

        def store(self, query, answer, *, model, category, context, documents):
            self.answers[(model, query)] = answer

    llm_cache(BlendCacheLLMCache(Minimal()))
    llm = fake()
    assert [llm.invoke(Q).content, llm.invoke(Q).content] == ["one", "one"]
