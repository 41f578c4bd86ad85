"""The wire schemas of requests (middleware/schemas.py): what they accept, refuse and derive."""

import pytest
from pydantic import ValidationError

from blendcache.middleware.schemas import (
    BlendcacheOptions,
    ChatCompletionRequest,
    DocumentsRequest,
    plain_messages,
)


def make_request(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields})


def error_locs(exc: ValidationError) -> list[tuple]:
    return [e["loc"] for e in exc.errors()]


def test_documents_may_be_strings_or_objects_with_an_optional_id():
    req = make_request(documents=["plain text", {"id": "fuji", "text": "Mount Fuji."},
                                  {"text": "no id"}])
    assert req.document_texts() == [(None, "plain text"), ("fuji", "Mount Fuji."),
                                    (None, "no id")]
    assert make_request().document_texts() == []
    assert make_request(documents=[]).document_texts() == []


@pytest.mark.parametrize("documents,loc", [
    ([3], ("documents", 0, "str")),
    ([{"id": "x"}], ("documents", 0, "DocumentObject", "text")),
    ([{"text": 3}], ("documents", 0, "DocumentObject", "text")),
    ([{"text": "a", "extra": 1}], ("documents", 0, "DocumentObject", "extra")),
    ("not a list", ("documents",)),
])
def test_bad_documents_are_refused(documents, loc):
    with pytest.raises(ValidationError) as info:
        make_request(documents=documents)
    assert loc in error_locs(info.value)


def test_blendcache_options_default_and_validate():
    assert make_request().blendcache is None
    assert BlendcacheOptions() == BlendcacheOptions(category=None, cache="on",
                                                    recompute_ratio=None)
    options = make_request(blendcache={"category": "faq", "cache": "refresh",
                                       "recompute_ratio": 0.25}).blendcache
    assert (options.category, options.cache, options.recompute_ratio) == ("faq", "refresh", 0.25)
    assert make_request(blendcache={"recompute_ratio": 1}).blendcache.recompute_ratio == 1.0


@pytest.mark.parametrize("options,loc", [
    ({"recompute_ratio": 1.5}, ("blendcache", "recompute_ratio")),
    ({"recompute_ratio": -0.1}, ("blendcache", "recompute_ratio")),
    ({"cache": "sometimes"}, ("blendcache", "cache")),
    ({"category": 3}, ("blendcache", "category")),
    ({"ratio": 0.5}, ("blendcache", "ratio")),  # unknown keys are refused, not ignored
])
def test_bad_blendcache_options_are_refused(options, loc):
    with pytest.raises(ValidationError) as info:
        make_request(blendcache=options)
    assert error_locs(info.value) == [loc]


@pytest.mark.parametrize("stop,expected", [
    (None, ()),
    ("\n", ("\n",)),
    (["a", "b"], ("a", "b")),
    ([], ()),
])
def test_stop_strings(stop, expected):
    assert make_request(stop=stop).stop_strings() == expected


def test_more_than_four_stop_strings_are_refused():
    with pytest.raises(ValidationError) as info:
        make_request(stop=["a", "b", "c", "d", "e"])
    assert ("stop", "list[str]") in error_locs(info.value)


def test_plain_messages_join_text_parts_and_keep_roles():
    req = make_request(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello, "},
                                     {"type": "text", "text": "world"}]},
        {"role": "assistant", "content": None, "name": "bot"},
    ])
    assert plain_messages(req.messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, world"},
        {"role": "assistant", "content": ""},
    ]


@pytest.mark.parametrize("messages,loc", [
    ([], ("messages",)),
    ([{"role": "user", "content": "  "}, {"role": "assistant", "content": None}],
     ("messages",)),  # every message empty
    ([{"role": "wizard", "content": "hi"}], ("messages", 0, "role")),
])
def test_bad_messages_are_refused(messages, loc):
    with pytest.raises(ValidationError) as info:
        make_request(messages=messages)
    assert error_locs(info.value) == [loc]


def test_unknown_top_level_fields_are_accepted_and_n_above_one_refused():
    assert make_request(logit_bias={"1": 2}, n=1).n == 1
    with pytest.raises(ValidationError) as info:
        make_request(n=2)
    assert error_locs(info.value) == [("n",)]


def test_documents_request_texts():
    body = DocumentsRequest.model_validate({"documents": ["a", {"id": "b", "text": "B"}]})
    assert (body.model, body.messages, body.document_texts()) == (None, [], ["a", "B"])


@pytest.mark.parametrize("body,loc", [
    ({"documents": []}, ("documents",)),
    ({}, ("documents",)),
    ({"documents": ["a"], "extra": 1}, ("extra",)),  # unlike a chat request: refused
])
def test_bad_documents_requests_are_refused(body, loc):
    with pytest.raises(ValidationError) as info:
        DocumentsRequest.model_validate(body)
    assert error_locs(info.value) == [loc]
