"""make_engine(config): the kernel's LLM engine for ``config.llm.name``.

hf_local models get kernel.llm.engine.Engine (the batching local engine),
with ``llm_name`` replaced by the resolved hub id or path (``gemma-2b-it`` ->
``google/gemma-2b-it``); remote backends get kernel.llm.remote.RemoteEngine.
A name or models file that cannot be used gives an engine whose
``load_error`` says why in one line (reported in the kernel's "ready"
event), never an exception out of the kernel's constructor.
"""

from __future__ import annotations

from kernel.llm import catalog


def make_engine(config):
    try:
        spec = catalog.resolve(config.llm.name, config.llm.base_url)
    except catalog.ModelConfigError as e:
        from kernel.llm.remote import RemoteEngine

        return RemoteEngine(config, spec=None, error=str(e))
    if not spec.remote:
        from kernel.llm.engine import Engine

        if spec.model != config.llm.name:
            config = config.with_flags(llm_name=spec.model)
        return Engine(config)
    from kernel.llm.remote import RemoteEngine

    return RemoteEngine(config, spec)
