"""The local LLM engine: one thread batches every agent's llm.chat calls.

Iteration-level batching over transformers forward passes (see batch.py):
each iteration the engine takes new requests in, lets the scheduling policy
(scheduler.py) preempt and admit sequences, prefills the admitted ones, and
decodes one token for every running sequence together; finished sequences
leave between steps. Preemption is a context switch (context.py): ids and
sampler state always, the KV cache while ``--kv_budget_mb`` allows.

Agent-aware serving: finished calls' K/V stay in a budgeted prefix cache
(prefix.py, ``--prefix_cache``, ``--prefix_cache_mb``), so a call that starts
with tokens the engine already computed (the agent's previous turn, a shared
system prompt) prefills only the rest; the kernel calls ``forget_pid`` when an
agent ends and its entries go. Prompts are prefilled at most
``--prefill_chunk`` tokens per iteration, between decode steps, so one long
prompt never stalls the batch. Limits: ``--max_prompt_tokens`` per call and
``--max_agent_kv_mb`` of KV per agent, refused with E2BIG.

Threads and locks:
  llm-engine   owns the model, the batch, the policy, every Sequence and
               the ContextStore; loads the model, then serves forever.
  callers      ``submit``/``cancel_pid``/``forget_pid``/``stats``/``stop`` from
               any thread touch only ``_cv``-guarded fields (_inbox, _live,
               _ended, _stopping) and EngineStats (its own lock).

Constrained requests (``response_format``/``tools``) go first to the
``llm-grammar`` thread (kernel.llm.constrain.Compiler), which compiles their
grammar once the model is loaded and then queues them like any other; a bad
or too costly grammar is answered EINVAL there. The engine masks their rows'
logits before sampling (kernel.llm.logitmask).

Request callbacks (kernel/llm/request.py): ``req.state("queued")`` when
queued, ``"running"`` when admitted to the batch, ``"preempted"`` when
switched out, ``req.finish`` exactly once; the engine writes no process
record. Torch threads: ``--llm_threads``, 0 = kernel.llm.threads' default
(all CPUs but one: the loop, the agents and the shell need the other).
Weights: ``--weights`` (kernel/llm/model.py): on a CPU the model runs int8
linear layers by default (kernel/llm/quant.py); nothing here depends on it.
"""

from __future__ import annotations

import logging
import threading
import time

from kernel.llm import constrain, fanout, ground, spans
from kernel.llm.request import LLMError, LLMRequest, result
from kernel.llm.sequence import SeqStatus, Sequence
from kernel.llm.stats import EngineStats
from kernel.llm.threads import default_threads
from kernel.protocol.messages import E2BIG, ECANCELED, EINVAL, EIO

# An engine idle this long after work gives the heap pages its batches freed back to the OS. glibc keeps
# them otherwise: the kernel's RSS after bench/throughput.py's 16 agents stayed 460 MiB above its RSS at
# start (int8: K/V are float64), with no K/V left in use. Not after each step: the next batch would
# fault the pages in again.
IDLE_RELEASE_S = 2.0

log = logging.getLogger("aios.engine")


class Engine:
    def __init__(self, config):
        self.llm_name = config.llm.name
        self.device = config.llm.device
        self.max_gpu_memory = config.llm.max_gpu_memory
        self.max_new_tokens = config.llm.max_new_tokens
        self.seed = config.llm.seed
        self.policy_name = config.sched.policy
        self.max_batch = 1 if config.sched.policy == "serial" else config.sched.max_batch
        self.quantum = config.sched.rr_quantum
        self.kv_budget_bytes = int(config.sched.kv_budget_mb * 2**20)
        self.threads = config.llm.threads or default_threads()
        self.tool_decision = config.llm.tool_decision  # --tool_decision: kernel.llm.relevance decides auto calls
        self.weights = config.llm.weights  # --weights; once loaded: what the model runs (int8, float32, ...)
        self.prefix_on = config.sched.prefix_cache == "on"
        self.prefix_budget_bytes = int(config.sched.prefix_cache_mb * 2**20)
        self.prefill_chunk = int(config.sched.prefill_chunk)  # tokens per iteration; 0 = whole prompts
        self.max_prompt_tokens = int(config.sched.max_prompt_tokens)  # 0 = the model's positions
        self.max_agent_kv_bytes = int(config.sched.max_agent_kv_mb * 2**20)  # 0 = unlimited
        self.program_aware = config.sched.program_aware == "on"
        self.prefix = None  # PrefixCache once loaded (None: off)
        self.prefilling: list[Sequence] = []  # admitted, prompt not all fed yet (engine thread)
        self.solo: list[Sequence] = []  # long running sequences decoding in their own cache (batch.solo)
        self.ready = threading.Event()  # set once the model is loaded (or failed)
        self.load_error: str | None = None
        self.load_time_s: float | None = None
        self.on_ready = None  # called on the engine thread once the model is loaded (or failed)
        self.on_progress = None  # on_progress(stage=, text=, done=, total=) while converting/loading
        self._cv = threading.Condition()  # guards _inbox, _live, _ended, _stopping
        self._inbox: list[LLMRequest] = []
        self._live: dict[int, LLMRequest] = {}  # id(req) -> req, submitted and not finished
        self._ended: list[int] = []  # pids the kernel reaped, not yet forgotten by the engine thread
        self._stopping = False
        self.counters = EngineStats()
        self.grammars = constrain.Compiler(self._lltokenizer)
        self._thread = threading.Thread(target=self._run, name="llm-engine", daemon=True)

    # -- public, thread-safe -----------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, req: LLMRequest) -> None:
        req.state("queued")  # before the engine thread can see it (and call state("running"))
        compile_first = req.constrained and req.matcher is None
        with self._cv:
            refusal = None
            if self._stopping:
                refusal = LLMError(ECANCELED, "kernel is stopping")
            elif self.ready.is_set() and self.load_error:
                refusal = LLMError(EIO, f"model {self.llm_name} is not available: {self.load_error}")
            else:
                self._live[id(req)] = req
                if not compile_first:
                    self._inbox.append(req)
                    self._cv.notify()
        if refusal is not None:
            req.finish(error=refusal)
        elif compile_first:
            self.grammars.submit(lambda: self._compile(req))

    def _lltokenizer(self):
        self.ready.wait()
        if self.load_error:
            raise RuntimeError(self.load_error)
        return constrain.lltokenizer(self.tok)

    def _tool_decision(self, req: LLMRequest) -> tuple[list[str] | None, dict]:
        """kernel.llm.relevance.plan for ``req`` (on the llm-grammar thread, once the model is loaded);
        the seconds it took are the call's own engine time (llm_time_s, the policy's charge)."""
        from kernel.llm import relevance

        self.ready.wait()
        if self.load_error:
            raise RuntimeError(self.load_error)
        allow, facts, req.decision_s = relevance.plan(self.model, self.tok, req.messages, req.tools, req.tool_choice,
                                                      decide=self.tool_decision == "kernel")
        return allow, facts

    def _compile(self, req: LLMRequest) -> None:
        """On the llm-grammar thread: attach a Matcher to ``req`` and queue it, or answer EINVAL."""
        from kernel.llm.logitmask import Matcher

        if req.cancelled or self._stopping:
            return self.finish(req, error=LLMError(ECANCELED, "request cancelled"))
        try:
            constrain.check_schemas(req.response_format, req.tools, req.tool_choice)
            allow, facts = ([], {}) if req.spent is not None else self._tool_decision(req)  # answered again in text
            req.may_answer_in_text = bool(allow) and req.on_text is None  # a streamed reply is not taken back
            text, names = constrain.grammar(req.response_format, req.tools, req.tool_choice, allow, **facts)
            req.matcher = Matcher(self.grammars.matcher(text), bool(names), self.grammars.vocab)
            if names:
                req.matcher.copier = spans.Copier(spans.source_text(req.messages), spans.token_table(self.tok))
            if names and facts.get("text") is not None:
                req.settle = ({f["name"]: f["parameters"] for f in constrain.tool_functions(req.tools)}, facts["text"])
            if names and self.tool_decision == "kernel":
                req.fan_out = fanout.plan(req.messages, req.tools, req.tool_choice)
        except constrain.ConstraintError as e:
            return self.finish(req, error=LLMError(EINVAL, str(e)))
        except ValueError as e:  # llguidance: the schema is not valid JSON for it
            return self.finish(req, error=LLMError(EINVAL, f"cannot compile the schema: {e}"))
        except RuntimeError as e:  # the model did not load
            return self.finish(req, error=LLMError(EIO, f"model {self.llm_name} is not available: {e}"))
        except Exception as e:  # never leave the caller without an answer
            log.exception("grammar compilation failed")
            return self.finish(req, error=LLMError(EIO, f"grammar compilation failed: {type(e).__name__}: {e}"))
        with self._cv:
            if self._stopping:
                refusal = True
            else:
                refusal = False
                self._inbox.append(req)
                self._cv.notify()
        if refusal:
            self.finish(req, error=LLMError(ECANCELED, "kernel is stopping"))

    def cancel_pid(self, pid: int) -> int:
        """Cancel every request of ``pid`` (queued, preempted or running); returns how many.

        The engine thread answers them with ECANCELED before its next step.
        """
        with self._cv:
            hit = [r for r in self._live.values() if r.pid == pid and not r.cancelled]
            for r in hit:
                r.cancelled = True
            if hit:
                self._cv.notify()
        return len(hit)

    def forget_pid(self, pid: int) -> None:
        """``pid`` ended: its prefix-cache entries and scheduling record go (on the engine thread)."""
        with self._cv:
            self._ended.append(pid)
            self._cv.notify()

    def stats(self) -> dict:
        snap = self.counters.snapshot(self.max_batch)
        store = getattr(self, "contexts", None)
        snap.update({
            "model": self.llm_name, "backend": "hf_local", "device": self.device, "policy": self.policy_name,
            "loaded": self.ready.is_set() and not self.load_error, "load_error": self.load_error,
            "load_time_s": self.load_time_s, "max_batch": self.max_batch, "rr_quantum": self.quantum,
            "threads": self.threads, "weights": self.weights, "kv_budget_bytes": self.kv_budget_bytes,
            "kv_saved_bytes": store.held_bytes if store else 0,
            "resumes_kv": store.restored if store else 0, "resumes_recompute": store.recomputed if store else 0,
            "prefix_cache": "on" if self.prefix_on else "off", "prefix_cache_budget_bytes": self.prefix_budget_bytes,
            "cache_bytes": self.prefix.nbytes if self.prefix is not None else 0,
            "prefill_chunk": self.prefill_chunk, "program_aware": "on" if self.program_aware else "off",
        })
        snap["kv_bytes"] = snap["kv_batch_bytes"] + snap["kv_saved_bytes"]
        return snap

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self.grammars.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._cv:  # never started, or stuck in a long forward pass: answer for it
            left = list(self._live.values())
            self._live.clear()
        for r in left:
            r.finish(error=LLMError(ECANCELED, "kernel is stopping"))

    # -- engine thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._load()
        except Exception as e:  # reported to every caller; the kernel keeps serving other syscalls
            self.load_error = f"model {self.llm_name}: {type(e).__name__}: {e}"
            log.error("model load failed: %s", self.load_error)
        finally:
            self.ready.set()
            if self.on_ready is not None:
                self.on_ready()
        try:
            if self.load_error:
                self._refuse_all()
            else:
                import torch

                with torch.inference_mode():
                    self._serve()
        except Exception:
            log.exception("engine thread failed")
            self.load_error = self.load_error or "the engine thread failed (see the kernel log)"
            self._finish_all(LLMError(EIO, "the LLM engine failed"))

    def _load(self) -> None:
        from kernel.hf import loading

        with loading():  # no other thread imports transformers or loads a model meanwhile
            self._load_locked()

    def _load_locked(self) -> None:
        import torch

        from kernel.llm import model as model_mod
        from kernel.llm.batch import DecodeBatch, batchable
        from kernel.llm.context import ContextStore
        from kernel.llm.kvcache import kv_dtype
        from kernel.llm.prefix import PrefixCache, kv_bytes_per_token
        from kernel.llm.scheduler import make_policy

        t0 = time.time()
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        self.model, self.tok = model_mod.load(self.llm_name, self.device, self.max_gpu_memory,
                                              progress=self.on_progress or model_mod.no_progress,
                                              weights=self.weights)
        self.weights = model_mod.weights_of(self.model)
        if not batchable(self.model) and self.policy_name != "serial":
            log.warning("%s has a cache layout the batch cannot re-pad (sliding window or recurrent "
                        "layers): scheduling it serially", self.llm_name)
            self.policy_name, self.max_batch = "serial", 1
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = frozenset(i for i in [*eos, self.tok.eos_token_id] if i is not None)
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None) or 1 << 30
        self.batch = DecodeBatch(self.model, self.tok.pad_token_id)
        self.policy = make_policy(self.policy_name, self.max_batch, self.quantum, self.program_aware)
        self.contexts = ContextStore(self.kv_budget_bytes)
        if self.batch.repad:
            self.kv_per_token = kv_bytes_per_token(self.model.config, kv_dtype(self.model))
            self.prefix = PrefixCache(self.prefix_budget_bytes) if self.prefix_on else None
        else:  # one-row caches of their own need full-attention layers
            self.kv_per_token = 0
            if self.prefix_on or self.prefill_chunk:
                log.warning("%s: no prefix cache and no chunked prefill (its cache layers cannot be "
                            "re-padded)", self.llm_name)
            self.prefix_on, self.prefill_chunk = False, 0
        self.load_time_s = time.time() - t0
        log.info("model %s (%s weights) loaded in %.2fs: policy %s, max_batch %d, %d torch threads",
                 self.llm_name, self.weights, self.load_time_s, self.policy_name, self.max_batch, self.threads)

    def _has_work(self) -> bool:
        return bool(self._inbox or self._stopping or self.running() or self.policy.waiting or self._ended
                    or any(r.cancelled for r in self._live.values()))

    def _serve(self) -> None:
        from kernel.llm import iteration
        from kernel.llm.kvcache import release_heap

        worked = False  # since the heap was last released
        while True:
            with self._cv:
                idle = False
                while not self._has_work():
                    if not self._cv.wait(IDLE_RELEASE_S if worked else None) and not self._has_work():
                        idle = True
                        break
                if not idle:
                    inbox, self._inbox = self._inbox, []
                    ended, self._ended = self._ended, []
                    if self._stopping:
                        break
            if idle:  # outside the lock: a submit need not wait for it
                worked = False
                release_heap()
                continue
            for pid in ended:
                self.policy.forget(pid)
                if self.prefix is not None:
                    self.prefix.release_pid(pid)
            for req in inbox:
                self._intake(req)
            iteration.run(self)
            worked = True
        self._finish_all(LLMError(ECANCELED, "kernel is stopping"))

    def _intake(self, req: LLMRequest) -> None:
        """Tokenize a new request and queue it (or answer it with an error)."""
        if req.cancelled:
            return self.finish(req, error=LLMError(ECANCELED, "request cancelled"))
        try:
            messages = constrain.as_text(req.messages)  # earlier tool calls in the model's own format
            if req.tools:
                messages = constrain.with_tools(messages, req.tools, req.tool_choice)
            if req.continue_final and messages and messages[-1].get("role") == "assistant":
                messages, partial = messages[:-1], str(messages[-1].get("content") or "")
            else:
                partial = ""
            enc = self.tok.apply_chat_template(messages, add_generation_prompt=True)
            ids = list(enc["input_ids"] if hasattr(enc, "keys") else enc)
            ids += self.tok.encode(partial, add_special_tokens=False) if partial else []
        except Exception as e:
            return self.finish(req, error=LLMError(EINVAL, f"cannot format the messages: {e}"))
        if len(ids) >= self.max_positions:
            return self.finish(req, error=LLMError(
                E2BIG, f"prompt of {len(ids)} tokens exceeds the model's {self.max_positions} positions"))
        if self.max_prompt_tokens and len(ids) > self.max_prompt_tokens:
            return self.finish(req, error=LLMError(
                E2BIG, f"prompt of {len(ids)} tokens exceeds --max_prompt_tokens {self.max_prompt_tokens}"))
        max_new = max(1, min(req.sampling.max_new_tokens, self.max_new_tokens, self.max_positions - len(ids)))
        if self.max_agent_kv_bytes and self.kv_per_token:
            need = (len(ids) + max_new) * self.kv_per_token
            held = self._agent_kv_bytes(req.pid)
            if held + need > self.max_agent_kv_bytes:
                mib = 2**20
                return self.finish(req, error=LLMError(E2BIG, (
                    f"this call needs {need / mib:.1f} MiB of KV ({len(ids)} prompt + {max_new} new tokens x "
                    f"{self.kv_per_token} bytes), pid {req.pid} already holds {held / mib:.1f} MiB in other calls, "
                    f"and --max_agent_kv_mb is {self.max_agent_kv_bytes / mib:g}")))
        if req.spent is not None:  # answered again in text: within what the first reply was granted
            max_new = max(1, min(max_new, req.spent[2]))
        elif req.admit is not None:
            try:
                max_new = req.admit(len(ids), max_new)  # the token quota reserves prompt + max_new
            except LLMError as e:
                return self.finish(req, error=e)
        seed = req.sampling.seed
        seq = Sequence(req, ids, max_new, self.eos_ids, seed if seed is not None else self.seed)
        seq.matcher = req.matcher
        req.tokens_in = len(ids)
        self.policy.add(seq, time.monotonic())
        if req.decision_s:
            seq.llm_time_s += req.decision_s
            self.policy.charge(req.pid, req.decision_s)

    def running(self) -> list[Sequence]:
        """Admitted sequences (engine thread): the batch's rows, those being prefilled, solo rows."""
        return [*self.batch.seqs, *self.prefilling, *self.solo]

    def _agent_kv_bytes(self, pid: int) -> int:
        """KV bytes ``pid``'s calls in the engine may reach (prompt + max_new tokens each)."""
        seqs = [*self.running(), *self.policy.waiting]
        return sum((s.prompt_len + s.max_new) * self.kv_per_token for s in seqs if s.req.pid == pid)

    # -- finishing (engine thread) -----------------------------------------------------
    def finish(self, req: LLMRequest, res: dict | None = None, error: Exception | None = None) -> None:
        with self._cv:
            self._live.pop(id(req), None)
        self.counters.add(**({"calls": 1} if error is None else {"errors": 1}))
        req.finish(result=res, error=error)

    def finish_seq(self, seq: Sequence) -> None:
        seq.status = SeqStatus.FINISHED
        if seq.finish_reason == "error":
            return self.finish(seq.req, error=LLMError(EINVAL, f"the grammar failed: {seq.matcher.error}"))
        text, extra, reason = seq.final_text(self.tok), {}, seq.finish_reason or "stop"
        if seq.matcher is not None and seq.matcher.tools:
            extra = constrain.parse_reply(text)
            text = extra.pop("text")
            if extra["tool_calls"] and seq.req.settle is not None:
                try:
                    extra["tool_calls"] = ground.settle(extra["tool_calls"], *seq.req.settle)
                except Exception:  # never the reply without its calls
                    log.exception("settling the calls' optional arguments failed; the model's calls are kept")
            if extra["tool_calls"] and seq.req.may_answer_in_text:
                extra["tool_calls"] = [c for c in extra["tool_calls"] if not self._wanting(c, seq.req)]
                if not extra["tool_calls"]:
                    return self._answer_in_text(seq)
            if extra["tool_calls"] and seq.req.fan_out is not None:
                extra["tool_calls"] = fanout.complete(extra["tool_calls"], *seq.req.fan_out)
            if extra["tool_calls"] and reason == "stop":
                reason = "tool_calls"
        out, secs = (seq.n_generated, seq.llm_time_s) if seq.req.spent is None else \
            (seq.n_generated + seq.req.spent[0], seq.llm_time_s + seq.req.spent[1])
        self.finish(seq.req, res=result(text, seq.prompt_len, out, reason, llm_time_s=secs,
                                        preemptions=seq.req.preemptions, first_token_at=seq.first_token_at,
                                        prefix_hit_tokens=seq.prefix_hit, **extra))

    @staticmethod
    def _wanting(call: dict, req: LLMRequest) -> bool:
        try:
            return req.settle is not None and ground.wanting(call, req.settle[0])
        except Exception:  # the calls stand
            log.exception("checking the calls' arguments failed; the model's calls are kept")
            return False

    def _answer_in_text(self, seq: Sequence) -> None:
        """Each call of the reply the kernel decided on left a required argument without a value of
        its own (kernel.llm.ground.wanting): the request lacks what the tools need, so the model answers it
        again, in text (prefix cache: the prompt is not computed again). Once; within the tokens
        granted to the call, which the result counts with the first reply's."""
        req = seq.req
        log.debug("pid %d call %s: the call left an argument without a value; answering in text",
                  req.pid, req.req_id)
        req.spent = (seq.n_generated, seq.llm_time_s, max(1, seq.max_new - seq.n_generated))
        req.decision_s = 0.0  # counted in spent; _compile skips the decision and sets the text grammar
        self.grammars.submit(lambda: self._compile(req))

    def fail_seq(self, seq: Sequence, error: LLMError) -> None:
        seq.status = SeqStatus.FINISHED
        seq.cache = None
        self.contexts.release(seq)
        self.finish(seq.req, error=error)

    def _refuse_all(self) -> None:
        """The model did not load: answer what is queued now and refuse the rest in submit()."""
        with self._cv:
            left, self._inbox = self._inbox, []
        for r in left:
            self.finish(r, error=LLMError(EIO, f"model {self.llm_name} is not available: {self.load_error}"))

    def _finish_all(self, error: LLMError) -> None:
        seqs = []
        if hasattr(self, "policy"):  # the model loaded
            seqs = self.running() + self.policy.take_all()
            self.batch.reset()
            self.prefilling, self.solo = [], []
        for s in seqs:
            self.fail_seq(s, error)
        with self._cv:
            left = list(self._live.values()) + self._inbox
            self._inbox = []
        for r in left:
            self.finish(r, error=error)
