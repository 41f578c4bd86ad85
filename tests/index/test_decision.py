"""The learned hit decision: exact features, the model's JSON, a threshold for a target
precision, and the cache's choice between the rules and the model."""

import json

import numpy as np
import pytest
from blendcache.config import SemanticConfig, Settings, validate
from blendcache.errors import ConfigError
from blendcache.index.decision import (
    DEFAULT_GUARANTEE_WEIGHTS,
    DEFAULT_WEIGHTS,
    FEATURES,
    LearnedDecision,
    LogisticModel,
    features,
    fit_logistic,
    load_model,
    threshold_for_precision,
)
from blendcache.index.semantic_cache import make_decision
from blendcache.index.verifier import Verifier


def _row(query, cached, similarity=0.9):
    return dict(zip(FEATURES, features(query, cached, similarity,
                                       verifier=Verifier()).round(4).tolist()))


def test_features_of_a_negation():
    row = _row("Is the pool open on Sundays?", "Is the pool not open on Sundays?")
    fired = {k for k, v in row.items() if k.startswith("rule_") and v}
    assert fired == {"rule_negation"}
    # words 6 vs 7 (+"not"): overlap 6/7, length ratio 6/7
    assert (row["similarity"], row["word_overlap"], row["length_ratio"]) == (0.9, 0.8571, 0.8571)
    assert (row["content_overlap"], row["number_mismatch"], row["entity_mismatch"]) == (1, 0, 0)


def test_a_misspelt_word_is_matched_content():
    row = _row("How do I cancle an order I placed?", "How do I cancel an order I placed?")
    assert row["content_overlap"] < 1.0 and row["content_matched"] == 1.0
    other = _row("How do I cancel an order I placed?", "How do I track an order I placed?")
    assert other["content_matched"] < 1.0


def test_features_of_an_entity_and_number_swap():
    row = _row("Who wrote Hamlet in 1600?", "Who wrote Macbeth in 1606?")
    assert {k for k, v in row.items() if k.startswith("rule_") and v} == {
        "rule_number_date", "rule_entity"}
    # who, wrote, in shared of 7 words; content {wrote, hamlet} vs {wrote, macbeth}
    assert (row["word_overlap"], row["content_overlap"]) == (0.4286, 0.3333)
    assert (row["number_mismatch"], row["entity_mismatch"], row["length_ratio"]) == (1, 1, 1)


def test_features_of_a_paraphrase():
    row = _row("how do I reset my router", "how can I reset my router please")
    assert not any(v for k, v in row.items() if k.startswith("rule_"))
    assert (row["word_overlap"], row["content_overlap"], row["length_ratio"]) == (
        0.625, 1.0, 0.8571)


def _tiny_model(threshold=0.5):
    n = len(FEATURES)
    return LogisticModel(FEATURES, (0.5,) + (0.0,) * (n - 1), (0.1,) + (1.0,) * (n - 1),
                         (2.0, -3.0) + (0.0,) * (n - 2), 0.25, threshold, {"command": "x"})


def test_model_round_trips_through_json(tmp_path):
    model = _tiny_model()
    again = LogisticModel.from_json(model.to_json())
    assert again == model and again.about == {"command": "x"}
    x = np.zeros(len(FEATURES))
    x[0] = 0.6  # z = (0.6 - 0.5) / 0.1 = 1 -> 2 + 0.25
    assert float(again.probability(x)) == pytest.approx(1 / (1 + np.exp(-2.25)))
    path = tmp_path / "m.json"
    path.write_text(model.to_json())
    assert load_model(path) == model


def test_load_refuses_other_features(tmp_path):
    data = json.loads(_tiny_model().to_json())
    data["features"] = data["features"][:-1]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="features"):
        load_model(path)
    with pytest.raises(ConfigError, match="not a decision model"):
        load_model(tmp_path / "missing.json")


def test_committed_weights_load_and_record_how_they_were_trained():
    model = load_model()
    assert model.features == FEATURES and 0.0 < model.threshold < 1.0
    assert model.about["command"].startswith("python -m blendcache.benchmarks.train_decision")
    assert set(model.about["train_sets"]) == {
        "fow_cache/pairs.jsonl:even", "nq_rule/train.jsonl", "hotpot_rule/train.jsonl"}
    assert DEFAULT_WEIGHTS.name == "decision_weights.json"


def test_committed_guarantee_weights_were_trained_under_the_cache_protocol():
    model = load_model(None, default=DEFAULT_GUARANTEE_WEIGHTS)
    assert model.features == FEATURES and model != load_model()
    assert model.about["protocol"] == "cache" and "--protocol cache" in model.about["command"]
    assert set(model.about["train_sets"]) == {
        "fow_cache/pairs.jsonl:even", "nq_rule/train.jsonl", "hotpot_rule/train.jsonl"}
    run = json.loads(DEFAULT_GUARANTEE_WEIGHTS.read_text())["run"]
    assert run["git"] and run["model"] == "all-MiniLM-L6-v2"  # where it was trained


def test_a_bounded_category_scores_with_the_guarantee_weights(tmp_path, make_cache):
    from blendcache.index.semantic_cache import CachedAnswer

    from .conftest import make_category, make_config

    path = tmp_path / "g.json"
    path.write_text(_tiny_model().to_json())
    ns = dict(tenant="t", category="faq", model="m")
    scores = {}
    for weights in (None, str(path)):
        config = make_config(make_category("faq", max_error_rate=0.05, context_sensitive=False),
                             guarantee_weights=weights)
        cache = make_cache(config, db=f"{len(scores)}.db")
        cache.store("How do I reset my password?", CachedAnswer("Use the link.", "stop"), **ns)
        hit = cache.lookup("How can I reset my password?", **ns, exploring=True)
        assert hit.explore
        expected = (load_model(weights, default=DEFAULT_GUARANTEE_WEIGHTS) if weights is None
                    else _tiny_model())
        row = features("How can I reset my password?", "How do I reset my password?",
                       hit.similarity, verifier=Verifier())
        assert hit.score == pytest.approx(float(expected.probability(row)), abs=1e-6)
        scores[weights] = hit.score
    assert scores[None] != scores[str(path)]
    # an unbounded category loads no second model
    assert make_cache(make_config(make_category("faq")), db="u.db").guarantee_decision is None


def test_threshold_meets_the_target_precision_on_a_tiny_set():
    probs = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    same = np.array([1, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    # p >= 0.6: 4 of 5 right (0.8); p >= 0.7: 3 of 4 (0.75); p >= 0.9: 2 of 2
    assert threshold_for_precision(probs, same, target_precision=0.8, min_support=2) == 0.6
    assert threshold_for_precision(probs, same, target_precision=0.81, min_support=2) == 0.9
    assert threshold_for_precision(probs, same, target_precision=0.81, min_support=3) == 0.95
    t = threshold_for_precision(probs, same, target_precision=0.8, min_support=2)
    assert same[probs >= t].mean() >= 0.8


def test_fit_separates_a_separable_feature_and_its_threshold_holds():
    rng = np.random.default_rng(0)
    y = np.repeat([0.0, 1.0], 50)
    x = np.zeros((100, len(FEATURES)))
    x[:, 0] = y * 0.3 + 0.6 + rng.normal(0, 0.05, 100)  # similarity
    mean, scale, coef, intercept = fit_logistic(x, y)
    assert coef[0] > 0 and np.all(coef[1:] == 0) and scale[1] == 1.0
    model = LogisticModel(FEATURES, tuple(mean), tuple(scale), tuple(coef), intercept, 0.5)
    probs = model.probability(x)
    t = threshold_for_precision(probs, y.astype(bool), target_precision=0.95, min_support=10)
    assert y[probs >= t].mean() >= 0.95 and (probs >= t).sum() >= 45


def test_learned_decision_names_the_rule_that_fired_and_counts():
    # accept iff similarity > 0.5 - 0.125 and no negation (z coefficient -3 on rule_negation)
    decision = LearnedDecision(_tiny_model())
    assert decision.verify("Is the pool open?", "Is the pool open?", similarity=0.6).accepted
    verdict = decision.verify("Is the pool open?", "Is the pool not open?", similarity=0.6)
    assert (verdict.accepted, verdict.reason) == (False, "negation")
    assert verdict.detail.endswith("rules: negation")
    low = decision.verify("Is the pool open?", "Is the pool open?", similarity=0.3)
    assert (low.accepted, low.reason) == (False, "learned")
    counts = decision.rejection_counts()
    assert (counts["negation"], counts["learned"], sum(counts.values())) == (1, 1, 2)
    with pytest.raises(ValueError, match="similarity"):
        decision.verify("a", "b")


def test_config_picks_rules_or_the_learned_model(tmp_path):
    assert type(make_decision(SemanticConfig(decision="rules"))) is Verifier
    path = tmp_path / "m.json"
    path.write_text(_tiny_model(threshold=0.3).to_json())
    learned = make_decision(SemanticConfig(decision="learned", decision_weights=str(path)))
    assert isinstance(learned, LearnedDecision) and learned.model.threshold == 0.3
    assert SemanticConfig().decision == "learned"
    with pytest.raises(ConfigError, match="semantic.decision"):
        validate(Settings(semantic=SemanticConfig(decision="vibes")))


def test_the_cache_serves_through_the_configured_decision(make_cache):
    from blendcache.index.semantic_cache import CachedAnswer

    from .conftest import make_config

    ns = dict(tenant="t", category="default", model="m")
    for decision in ("rules", "learned"):
        cache = make_cache(make_config(decision=decision), db=f"{decision}.db")
        cache.store("Is the clinic open on Sundays?", CachedAnswer("yes", "stop"), **ns)
        assert cache.lookup("Is the clinic not open on Sundays?", **ns) is None
        hit = cache.lookup("Is the clinic open on Sundays", **ns)
        assert hit is not None and hit.response.text == "yes"
        assert cache.stats().rejections["negation"] == 1


@pytest.mark.parametrize("default", ["learned", "rules"])
def test_a_category_names_its_own_decision(make_cache, default):
    """Pairs the two decisions judge apart (fow_cache's even ids): each category serves as its
    own decision says, whatever the default; rejections of both are counted."""
    from blendcache.index.semantic_cache import CachedAnswer

    from .conftest import make_category, make_config

    config = make_config(make_category("faq", decision="rules"),
                         make_category("rag", decision="learned"), decision=default)
    cache = make_cache(config, db=f"{default}.db")
    rules_only = ("How do I turn off two-factor authentication?", "How can I disable 2FA?")
    learned_only = ("How much is a return ticket from London to Manchester?",
                    "What's the price of a London to Manchester return?")
    served = {}
    for category in ("faq", "rag"):
        ns = dict(tenant="t", category=category, model="m")
        for cached, _ in (rules_only, learned_only):
            cache.store(cached, CachedAnswer(cached, "stop"), **ns)
        served[category] = [cache.lookup(query, **ns) is not None
                            for _, query in (rules_only, learned_only)]
    assert served == {"faq": [True, False], "rag": [False, True]}
    rejections = cache.stats().rejections
    assert rejections["learned"] == 1 and rejections["content"] >= 1
    assert sum(rejections.values()) == 2


def test_a_category_decision_is_checked():
    from blendcache.config import CategoryConfig

    semantic = SemanticConfig(categories=(CategoryConfig("faq", decision="vibes"),),
                              default_category="faq")
    with pytest.raises(ConfigError, match=r"categories\['faq'\].decision"):
        validate(Settings(semantic=semantic))
