"""The one gate through which kernel threads import transformers and load its models.

transformers resolves its public names lazily (``transformers.__getattr__``
imports submodules on first use), and that resolution is not thread-safe: when
the LLM engine thread ran ``from transformers import DynamicCache`` while the
memory embedder thread ran ``from transformers import AutoModel``, one of them
got ``ImportError: cannot import name 'DynamicCache'`` in about one cold boot
in three, and the model was then unavailable for the kernel's whole life.

So every thread that imports transformers-backed code or loads a model holds
``HF_LOCK`` for the whole import-and-load (``with loading():``). Loads then run
one after the other (the embedder waits ~2 s for the LLM on a cold boot); once
both are loaded, their modules are in ``sys.modules`` and later imports are
plain attribute reads. Kernel process only: imports torch via transformers.
"""

from __future__ import annotations

import contextlib
import threading

HF_LOCK = threading.Lock()  # held by one thread at a time while it imports transformers or loads weights


@contextlib.contextmanager
def loading():
    """Hold the gate, with transformers' public names already resolved inside it."""
    with HF_LOCK:
        import transformers  # noqa: F401
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, DynamicCache  # noqa: F401
        from transformers.cache_utils import DynamicLayer  # noqa: F401
        yield
