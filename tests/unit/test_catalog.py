"""Model names -> backends (kernel/llm/models.json and user files), and make_engine's choice."""

from __future__ import annotations

import json

import pytest

from kernel.config import KernelConfig
from kernel.llm import catalog
from kernel.llm.factory import make_engine
from kernel.llm.remote import RemoteEngine
from kernel.llm.request import LLMRequest, SamplingParams


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("AIOS_MODELS", "OPENAI_BASE_URL", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user models file


@pytest.mark.parametrize("name,backend,model", [
    ("smollm2-135m-instruct", "hf_local", "smollm2-135m-instruct"),
    ("gemma-2b-it", "hf_local", "google/gemma-2b-it"),
    ("gemma-7b-it", "hf_local", "google/gemma-7b-it"),
    ("mixtral-8x7b-it", "hf_local", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    ("llama2-13b-chat-hf", "hf_local", "meta-llama/Llama-2-13b-chat-hf"),
    ("gpt-3.5-turbo", "openai_compat", "gpt-3.5-turbo"),
    ("gpt-4", "openai_compat", "gpt-4"),
    ("gemini-pro", "gemini", "gemini-2.5-pro"),
])
def test_original_names(name, backend, model):
    spec = catalog.resolve(name)
    assert (spec.backend, spec.model) == (backend, model)
    if backend == "openai_compat":
        assert spec.base_url == "https://api.openai.com/v1" and spec.api_key_env == "OPENAI_API_KEY"
        assert spec.key_required
    if backend == "gemini":
        assert spec.api_key_env == "GEMINI_API_KEY" and spec.key_required


def test_prefixes_and_base_url_precedence(monkeypatch):
    spec = catalog.resolve("openai:gpt-4o-mini")
    assert (spec.backend, spec.model, spec.base_url, spec.key_required) == \
        ("openai_compat", "gpt-4o-mini", "https://api.openai.com/v1", True)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-box:8000/v1")
    spec = catalog.resolve("openai:llama3")
    assert spec.base_url == "http://gpu-box:8000/v1" and not spec.key_required  # not OpenAI: key optional
    assert catalog.resolve("openai:llama3", "http://127.0.0.1:9/v1").base_url == "http://127.0.0.1:9/v1"
    assert catalog.resolve("gpt-4").base_url == "http://gpu-box:8000/v1"  # OPENAI_BASE_URL also moves gpt-4
    vllm = catalog.resolve("vllm:Qwen/Qwen2.5-7B-Instruct")
    assert vllm.resume == "continue_final_message" and vllm.base_url == "http://localhost:8000/v1"
    assert catalog.resolve("ollama:llama3.2").base_url == "http://localhost:11434/v1"
    assert catalog.resolve("gemini:gemini-2.5-flash").backend == "gemini"
    assert catalog.resolve("hf:HuggingFaceTB/SmolLM2-360M-Instruct").model == "HuggingFaceTB/SmolLM2-360M-Instruct"


def test_unknown_names_are_hub_ids_or_paths():
    spec = catalog.resolve("someone/some-model")
    assert (spec.backend, spec.model) == ("hf_local", "someone/some-model")
    with pytest.raises(catalog.ModelConfigError, match="--llm_base_url is for remote models"):
        catalog.resolve("gemma-2b-it", "http://127.0.0.1:9/v1")
    with pytest.raises(catalog.ModelConfigError, match="give a model after 'openai:'"):
        catalog.resolve("openai:")


def test_user_models_file_overrides_and_errors(monkeypatch, tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"models": {"gpt-4": {"backend": "openai_compat", "model": "gpt-4-turbo",
                                                  "base_url": "http://127.0.0.1:1/v1", "max_concurrency": 3}}}))
    monkeypatch.setenv("AIOS_MODELS", str(f))
    spec = catalog.resolve("gpt-4")
    assert (spec.model, spec.max_concurrency, spec.key_required) == ("gpt-4-turbo", 3, False)
    assert "gemma-2b-it" in catalog.names()  # the built-in entries are still there
    f.write_text(json.dumps({"models": {"x": {"backend": "openai_compat", "base_url": "http://h/v1", "colour": 1}}}))
    with pytest.raises(catalog.ModelConfigError, match=r"model 'x': unknown field\(s\) colour"):
        catalog.resolve("x")
    f.write_text(json.dumps({"models": {"x": {"backend": "carrier-pigeon"}}}))
    with pytest.raises(catalog.ModelConfigError, match="backend must be one of"):
        catalog.resolve("x")
    f.write_text("{not json")
    with pytest.raises(catalog.ModelConfigError, match="cannot read models file"):
        catalog.resolve("x")
    monkeypatch.setenv("AIOS_MODELS", str(tmp_path / "missing.json"))
    with pytest.raises(catalog.ModelConfigError, match="does not exist"):
        catalog.resolve("x")


def test_factory_picks_the_engine(monkeypatch):
    built = []

    class LocalEngine:
        def __init__(self, config):
            built.append(config.llm.name)

    monkeypatch.setattr("kernel.llm.engine.Engine", LocalEngine)
    assert isinstance(make_engine(KernelConfig.from_flags(llm_name="gemma-2b-it")), LocalEngine)
    assert isinstance(make_engine(KernelConfig()), LocalEngine)
    assert built == ["google/gemma-2b-it", "smollm2-135m-instruct"]  # hub id, not the short name
    eng = make_engine(KernelConfig.from_flags(llm_name="gpt-4", scheduler="serial"))
    assert isinstance(eng, RemoteEngine) and eng.slots == 1  # serial: one call at a time on any backend
    assert make_engine(KernelConfig.from_flags(llm_name="gpt-4")).slots == 8


def test_a_bad_name_is_a_load_error_not_an_exception():
    eng = make_engine(KernelConfig.from_flags(llm_name="gemma-2b-it", llm_base_url="http://127.0.0.1:9/v1"))
    seen = []
    eng.on_ready = lambda: seen.append(eng.stats()["load_error"])
    eng.start()
    assert eng.ready.wait(10)
    assert seen == ["--llm_base_url is for remote models; 'gemma-2b-it' is a local (hf_local) model"]
    errors = []
    eng.submit(LLMRequest(pid=1, req_id=1, messages=[{"role": "user", "content": "hi"}],
                          sampling=SamplingParams(max_new_tokens=4),
                          on_done=lambda r, res, err: errors.append((err.code, err.message))))
    assert errors == [("EIO", f"model gemma-2b-it is not available: {seen[0]}")]
    eng.stop()
