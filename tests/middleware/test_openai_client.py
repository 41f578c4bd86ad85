"""End to end: a real uvicorn server on loopback and the real ``openai`` client."""

import pytest

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def base_url(engine, embedder, tmp_path_factory):
    from blendcache.config import Settings, StorageConfig
    from blendcache.middleware.app import create_app
    from blendcache.middleware.server import serving

    data_dir = tmp_path_factory.mktemp("serve")
    app = create_app(Settings(storage=StorageConfig(data_dir=str(data_dir))), engine=engine,
                     embedder=embedder)
    with serving(app) as url:
        yield f"{url}/v1"


def test_openai_client_non_streaming_and_streaming(base_url):
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="unused")
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    model = client.models.list().data[0].id
    off = {"blendcache": {"cache": "off"}}
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=16,
                                           extra_body=off)
    assert "Paris" in reply.choices[0].message.content
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=16,
                                            stream=True, extra_body=off)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == reply.choices[0].message.content


def test_openai_client_sees_4xx_as_bad_request(base_url):
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=[])
    assert info.value.status_code == 400
