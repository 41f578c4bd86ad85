"""Apps over the tiny random-weight model (``make_app``, ``client``: behaviour) or over the real
SmolLM2 (``make_model_app``, ``model_client``: tests that need real text, marked ``model``)."""

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def make_app(tiny_engine, make_settings, request):
    """``make_app(settings=None)``: the app over the tiny model, and over the session's embedder
    when the settings' semantic layer is on."""
    from blendcache.middleware.app import create_app

    def make(settings=None):
        settings = settings or make_settings()
        embedder = request.getfixturevalue("embedder") if settings.semantic.enabled else None
        return create_app(settings, engine=tiny_engine, embedder=embedder)

    return make


@pytest.fixture
def client(make_app):
    with TestClient(make_app()) as c:
        yield c


@pytest.fixture
def make_model_app(engine, embedder, make_settings):
    """``make_model_app(settings=None)``: the app over the session's real model and embedder."""
    from blendcache.middleware.app import create_app

    def make(settings=None):
        return create_app(settings or make_settings(), engine=engine, embedder=embedder)

    return make


@pytest.fixture
def model_client(make_model_app):
    with TestClient(make_model_app()) as c:
        yield c


ADMIN_TOKEN = "admin-0123456789"
TENANT_KEYS = {"acme": "sk-acme-0123", "globex": "sk-globex-4567"}
ADMIN_DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
              "Mount Fuji is the highest mountain in Japan."]


@pytest.fixture
def admin_settings(make_settings):
    """``admin_settings(**sections)``: two keyed tenants, the admin token ``ADMIN_TOKEN``, and the
    categories ``default`` and ``faq``."""
    from blendcache.config import AuthConfig, CategoryConfig, SemanticConfig, TenantConfig

    def make(**sections):
        sections.setdefault("tenants", tuple(TenantConfig(name, api_keys=(key,))
                                             for name, key in TENANT_KEYS.items()))
        sections.setdefault("auth", AuthConfig(admin_token=ADMIN_TOKEN))
        sections.setdefault("semantic", SemanticConfig(
            categories=(CategoryConfig("default"), CategoryConfig("faq"))))
        return make_settings(**sections)

    return make


@pytest.fixture
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest.fixture
def known_sequence():
    """``known_sequence(http)``: see ``_known_sequence``."""
    return _known_sequence


def _known_sequence(http) -> list[str]:
    """Six requests through ``http`` (a TestClient or an httpx.Client on a served app): 3 misses,
    2 semantic hits, 1 blend, over two tenants and two categories; their cache outcomes."""
    asks = [("acme", "When was the Eiffel Tower completed?", ADMIN_DOCS, None),
            ("acme", "When was the Eiffel Tower completed?", ADMIN_DOCS, None),
            ("acme", "How high is Mount Fuji?", ADMIN_DOCS, None),
            ("globex", "What is a tower?", [], "faq"),
            ("globex", "What is a tower?", [], "faq"),
            ("globex", "Name a mountain in Japan.", [], "faq")]
    outcomes = []
    for tenant, question, documents, category in asks:
        body = {"model": "default", "max_tokens": 4, "documents": documents,
                "messages": [{"role": "user", "content": question}]}
        if category is not None:
            body["blendcache"] = {"category": category}
        response = http.post("/v1/chat/completions", json=body,
                             headers={"authorization": f"Bearer {TENANT_KEYS[tenant]}"})
        assert response.status_code == 200, response.text
        outcomes.append(response.headers["x-blendcache-cache"])
    return outcomes
