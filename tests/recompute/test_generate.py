import pytest

from blendcache.recompute.generate import Generation, SamplingParams, decode, generate, prefill

pytestmark = pytest.mark.model

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def prompt(engine):
    return engine.chat_prompt_ids(QUESTION)


def test_greedy_is_deterministic_and_sensible(engine, prompt):
    a = generate(engine, prompt, SamplingParams(max_new_tokens=16))
    b = generate(engine, prompt, SamplingParams(max_new_tokens=16))
    assert a.token_ids == b.token_ids
    assert "Paris" in a.text
    assert a.prompt_tokens == len(prompt)
    assert a.ttft_ms > 0


def test_stops_on_eos(engine, prompt):
    result = generate(engine, prompt, SamplingParams(max_new_tokens=64))
    assert result.finish_reason == "stop"
    assert len(result.token_ids) < 64
    assert not set(result.token_ids) & engine.eos_token_ids


def test_stops_at_max_tokens(engine, prompt):
    result = generate(engine, prompt, SamplingParams(max_new_tokens=3))
    assert result.finish_reason == "length"
    assert len(result.token_ids) == 3


def test_stop_string_is_cut_out(engine, prompt):
    full = generate(engine, prompt, SamplingParams(max_new_tokens=16)).text
    word = "Paris"
    assert word in full
    result = generate(engine, prompt, SamplingParams(max_new_tokens=16, stop=(word,)))
    assert result.finish_reason == "stop"
    assert result.text == full[: full.index(word)]


def test_sampling_with_seed_is_reproducible(engine, prompt):
    params = SamplingParams(max_new_tokens=12, temperature=1.5, seed=7)
    assert generate(engine, prompt, params).token_ids == generate(engine, prompt, params).token_ids
    others = {tuple(generate(engine, prompt, SamplingParams(
        max_new_tokens=12, temperature=1.5, seed=s)).token_ids) for s in range(4)}
    assert len(others) > 1


def test_streamed_steps_join_to_the_text(engine, prompt):
    result = Generation()
    with engine.lock:
        pieces = [s.text for s in decode(engine, prefill(engine, prompt),
                                         SamplingParams(max_new_tokens=16), result)]
    assert len(pieces) > 1
    assert "".join(pieces) == result.text
