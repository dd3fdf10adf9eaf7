"""The LLM engine thread: owns the model and serves LLMRequests.

This first engine runs one request at a time with ``model.generate`` (the
original system's behaviour, kept as the ``serial`` baseline). The engine
thread is the only thread that touches the model.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from kernel.llm.request import LLMError, LLMRequest, result

log = logging.getLogger("aios.engine")


class Engine:
    def __init__(self, config):
        self.llm_name = config.llm_name
        self.device = config.eval_device
        self.max_gpu_memory = config.max_gpu_memory
        self.max_new_tokens = config.max_new_tokens
        self.seed = config.seed
        self.ready = threading.Event()  # set once the model is loaded (or failed)
        self.load_error: str | None = None
        self.load_time_s: float | None = None
        self.on_ready = None  # called on the engine thread once the model is loaded (or failed)
        self._cv = threading.Condition()  # guards _queue, _stopping, stats
        self._queue: collections.deque[LLMRequest] = collections.deque()
        self._stopping = False
        self._current: LLMRequest | None = None
        self.tokens_out = 0
        self.busy_s = 0.0
        self._thread = threading.Thread(target=self._run, name="llm-engine", daemon=True)

    # -- public, thread-safe ---------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, req: LLMRequest) -> None:
        with self._cv:
            if self._stopping:
                req.finish(error=LLMError("ECANCELED", "kernel is stopping"))
                return
            self._queue.append(req)
            self._cv.notify()
        req.state("ready")

    def cancel_pid(self, pid: int) -> int:
        """Cancel every request of ``pid`` (queued or running); returns how many."""
        with self._cv:
            dropped = [r for r in self._queue if r.pid == pid]
            self._queue = collections.deque(r for r in self._queue if r.pid != pid)
            if self._current is not None and self._current.pid == pid:
                self._current.cancelled = True
        for r in dropped:
            r.cancelled = True
            r.finish(error=LLMError("ECANCELED", "process ended"))
        return len(dropped)

    def stats(self) -> dict:
        with self._cv:
            return {"model": self.llm_name, "policy": "serial", "loaded": self.ready.is_set() and not self.load_error,
                    "load_error": self.load_error, "load_time_s": self.load_time_s,
                    "queue": len(self._queue), "running": int(self._current is not None),
                    "tokens_out": self.tokens_out, "busy_s": self.busy_s}

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            if self._current is not None:
                self._current.cancelled = True
            self._cv.notify_all()
        for r in pending:
            r.finish(error=LLMError("ECANCELED", "kernel is stopping"))
        self._thread.join(timeout=10)

    # -- engine thread ---------------------------------------------------------
    def _run(self) -> None:
        try:
            self._load()
        except Exception as e:  # reported to every caller; the kernel keeps serving other syscalls
            self.load_error = f"{type(e).__name__}: {e}"
            log.error("model load failed: %s", self.load_error)
        finally:
            self.ready.set()
            if self.on_ready is not None:
                self.on_ready()
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if self._stopping:
                    return
                req = self._current = self._queue.popleft()
            try:
                if self.load_error:
                    raise LLMError("EIO", f"model {self.llm_name} is not available: {self.load_error}")
                res = self._generate(req)
            except LLMError as e:
                req.finish(error=e)
            except Exception as e:
                log.exception("generation failed for pid %s", req.pid)
                req.finish(error=LLMError("EIO", f"generation failed: {type(e).__name__}: {e}"))
            else:
                req.finish(result=res)
            finally:
                with self._cv:
                    self._current = None

    def _load(self) -> None:
        import torch

        from kernel.llm import model as model_mod

        t0 = time.time()
        torch.manual_seed(self.seed)
        self.model, self.tok = model_mod.load(self.llm_name, self.device, self.max_gpu_memory)
        self.load_time_s = time.time() - t0
        log.info("model %s loaded in %.2fs", self.llm_name, self.load_time_s)

    def _generate(self, req: LLMRequest) -> dict:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                return torch.full((input_ids.shape[0],), req.cancelled, dtype=torch.bool)

        enc = self.tok.apply_chat_template(req.messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
        ids = enc["input_ids"].to(self.model.device)
        mask = enc["attention_mask"].to(self.model.device)
        req.state("running")
        t0 = time.time()
        if req.timing is not None:
            req.timing.started = t0
            req.timing.tokens_in = ids.shape[1]
        kwargs = dict(max_new_tokens=min(req.max_new_tokens, self.max_new_tokens),
                      pad_token_id=self.tok.pad_token_id,
                      stopping_criteria=StoppingCriteriaList([Cancelled()]))
        if req.stop:
            kwargs.update(stop_strings=req.stop, tokenizer=self.tok)
        if req.temperature > 0:
            torch.manual_seed(req.seed if req.seed is not None else self.seed)
            kwargs.update(do_sample=True, temperature=req.temperature, top_p=req.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        new = out[0, ids.shape[1]:]
        n_out = int(new.shape[0])
        text = self.tok.decode(new, skip_special_tokens=True)
        finish = "length" if n_out >= kwargs["max_new_tokens"] else "stop"
        for s in req.stop:
            i = text.find(s)
            if i >= 0:
                text, finish = text[:i], "stop"
        dt = time.time() - t0
        with self._cv:
            self.tokens_out += n_out
            self.busy_s += dt
        if req.cancelled:
            raise LLMError("ECANCELED", "request cancelled")
        return result(text, int(ids.shape[1]), n_out, finish, llm_time_s=dt)
