"""KernelConfig: the one config object of the kernel, built at the CLI edge."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

EMBEDDED_MODEL = "smollm2-135m-instruct"
LOG_MODES = ("console", "file")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SCHEDULERS = ("serial", "fifo", "rr", "priority")
CONFINE_MODES = ("auto", "strict", "landlock", "off")


def _xdg(var: str, *fallback: str) -> Path:
    """``$VAR`` when it is an absolute path (the XDG spec ignores relative ones), else ~/<fallback>."""
    base = os.environ.get(var, "")
    return Path(base if os.path.isabs(base) else os.path.join(os.path.expanduser("~"), *fallback)) / "aios"


def state_dir() -> Path:
    """User state directory, XDG style: ~/.local/state/aios (logs/, data/, shell_history), whatever the
    current folder."""
    return _xdg("XDG_STATE_HOME", ".local", "state")


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache")


@dataclass
class KernelConfig:
    llm_name: str = EMBEDDED_MODEL
    llm_base_url: str | None = None  # server URL for remote models (openai:<model>, vllm:..., ollama:...)
    eval_device: str = "cpu"
    max_gpu_memory: dict | str | None = None  # JSON map for accelerate, e.g. {"0": "24GiB"}
    max_new_tokens: int = 256  # default and ceiling for one llm.chat call
    scheduler: str = "fifo"
    max_batch: int = 16
    rr_quantum: int = 16  # decoded tokens before an rr preemption (and before a priority preemption)
    kv_budget_mb: float = 1024.0  # MiB of KV cache kept for preempted generations; beyond it KV is recomputed
    llm_threads: int = 0  # torch threads of the local engine; 0 = all CPUs but one (kernel/llm/threads.py)
    tool_decision: str = "kernel"  # local model, tool_choice auto on a user turn: kernel (relevance + grounding) or model
    weights: str = "auto"  # local model weights: auto (int8 on a CPU, the model's dtype on a GPU), int8, fp32
    scheduler_log_mode: str = "console"
    agent_log_mode: str = "console"
    log_dir: str = field(default_factory=lambda: str(state_dir() / "logs"))  # made absolute in __post_init__
    log_level: str = "INFO"  # least severe record the kernel logs (files, and the console's -v)
    log_max_bytes: int = 10 * 1024 * 1024  # a log file rotates past this size (kernel, scheduler, audit, agent)
    log_backups: int = 5  # rotated copies kept of one log file (<name>.log.1 .. .N)
    log_keep_runs: int = 50  # run files kept per kind (kernel/scheduler/audit, and per agent app); 0: all
    data_dir: str = field(default_factory=lambda: str(state_dir() / "data"))
    kill_grace_s: float = 2.0  # SIGTERM -> SIGKILL delay when killing an agent
    # Storage manager (kernel/storage): <data_dir>/storage.sqlite3.
    storage_sync: str = "full"  # full: fsync each commit (survives power loss); normal: survives a killed kernel
    storage_max_record_bytes: int = 512 * 1024  # one version of one record
    storage_keep_versions: int = 256  # versions kept per record, oldest pruned first (0: all)
    storage_confirm_overwrite: bool = False  # confirm every overwrite, not only those that prune a version
    # Memory manager (kernel/memory): budgets in bytes of UTF-8 content.
    mem_budget_bytes: int = 64 * 1024  # resident working memory per process
    mem_global_budget_bytes: int = 16 * 1024 * 1024  # resident working memory, all processes
    mem_agent_limit_bytes: int = 8 * 1024 * 1024  # resident + evicted per process
    mem_agent_max_blocks: int = 20_000  # blocks per process
    mem_block_max_bytes: int = 32 * 1024  # one block
    mem_search: str = "hybrid"  # hybrid: BM25 + all-MiniLM-L6-v2 embeddings; bm25: keywords only
    # Supervision (OTP-style restart intensity): restart an agent that crashed or was
    # killed by a signal it did not ask for, at most restart_max times per restart_period_s.
    restart_max: int = 0  # 0 = off (default)
    restart_period_s: float = 60.0
    # Tools (kernel/tools) and access control (kernel/access).
    tool_timeout_s: float = 60.0  # ceiling of one tool call's run time (a tool's own default is lower)
    tool_scheduling: str = "per_tool"  # per_tool limits and queues; global_lock = the original one-at-a-time baseline
    docs_dir: str = ""  # folder search_docs reads besides the workspace ("" = <data_dir>/docs)
    workspace_max_bytes: int = 64 << 20  # cap of one agent app's tool workspace (<data_dir>/workspaces/<Agent>)
    interactive_confirm: bool = False  # ask the user (y/N) for irreversible actions; the REPL sets it
    confirm_policy: str = "deny"  # without a user to ask: "deny" or "allow" irreversible actions
    confirm_timeout_s: float = 120.0  # an unanswered confirmation is denied after this
    quota_llm_tokens: int = 0  # LLM tokens (in + out) per agent process; 0 = unlimited
    quota_syscalls_per_s: float = 0.0  # syscall rate per agent process (token bucket); 0 = unlimited
    quota_syscall_burst: int = 50  # bucket depth of quota_syscalls_per_s
    quota_storage_bytes: int = 0  # bytes an agent app may keep in storage (all versions); 0 = unlimited
    seed: int = 0
    # Process limits and the ended-process history (kernel/process/history.py).
    max_agents: int = 256  # agent processes alive at once; spawn past it is EAGAIN (agents: past it - user_reserve)
    max_children: int = 16  # live children one agent may have (proc.spawn); past it EAGAIN
    max_agents_per_app: int = 0  # live agents of one app an agent's spawn may bring; 0 = max(1, max_agents // 4)
    max_agents_per_tree: int = 0  # live agents in one spawn tree (root + proc.spawn descendants); 0 = max(2, max_agents // 8)
    storage_max_records: int = 10_000  # records one agent app may keep in storage; past it ENOSPC
    history_max_procs: int = 1000  # ended processes kept in the table (ps -a, info, wait)
    history_max_bytes: int = 64 << 20  # bytes of tasks, results and errors those keep in kernel memory
    # MCP servers hosted by the tool manager (kernel/tools/mcp): a Claude-Desktop-style JSON file.
    mcp_config: str = ""  # "" = none
    # Agent-aware LLM serving (kernel/llm/prefix.py, iteration.py): prefix reuse, chunked prefill, limits.
    prefix_cache: str = "on"  # keep finished calls' KV and prefill only what is new: on | off
    prefix_cache_mb: float = 256.0  # MiB of KV the prefix cache may hold (LRU beyond it)
    prefill_chunk: int = 64  # prompt tokens prefilled per engine iteration, between decode steps (0: whole prompts)
    max_prompt_tokens: int = 0  # prompt tokens per llm.chat call, E2BIG beyond (0: the model's context)
    max_agent_kv_mb: float = 0.0  # MiB of KV one agent's calls in the engine may need, E2BIG beyond (0: unlimited)
    program_aware: str = "off"  # on: admit the call of the least-served agent first (Autellix PLAS)
    # Confinement of agent processes (kernel/confine): auto = every layer the machine has.
    confine: str = "auto"  # auto | strict (refuse to start agents when a layer is missing) | landlock (the fallback, forced) | off
    confine_allow_network: bool = False  # let apps whose profile says "network": true reach the network
    confine_memory_mb: int = 2048  # address space per agent process (profile "limits": {"memory_mb": N})
    confine_processes: int = 64  # processes per agent, itself and descendants ("processes")
    confine_files: int = 1024  # open files per agent process ("files")
    confine_cpu_s: int = 3600  # CPU seconds per agent process ("cpu_s")
    # Tracing (kernel/trace): a span per call of every process; views: the shell's trace command, export.
    trace: str = "on"  # on | off
    trace_content: bool = False  # spans keep previews of prompts, completions, tool arguments and results
    trace_file: str = ""  # JSON lines, one span per line, OTLP/JSON field names ("" = none)
    otlp_endpoint: str = ""  # OTLP/HTTP collector, e.g. http://localhost:4318 ("" = none)

    def __post_init__(self):
        # absolute: the kernel, its agents and a daemon's clients all name the same folders, whatever their cwd
        self.log_dir = os.path.abspath(os.path.expanduser(self.log_dir))
        self.data_dir = os.path.abspath(os.path.expanduser(self.data_dir))
        if isinstance(self.max_gpu_memory, str):
            try:
                self.max_gpu_memory = json.loads(self.max_gpu_memory) if self.max_gpu_memory else None
            except ValueError as e:
                raise ValueError(f"--max_gpu_memory must be a JSON map like '{{\"0\": \"24GiB\"}}': {e}") from None
        if self.max_gpu_memory is not None and not isinstance(self.max_gpu_memory, dict):
            raise ValueError("--max_gpu_memory must be a JSON object mapping devices to sizes")
        if self.max_new_tokens < 1:
            raise ValueError("--max_new_tokens must be at least 1")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, not {self.scheduler!r}")
        if self.restart_max < 0 or self.restart_period_s <= 0:
            raise ValueError("--restart_max must be >= 0 and --restart_period_s > 0")
        if self.max_batch < 1:
            raise ValueError("--max_batch must be at least 1")
        if self.rr_quantum < 1:
            raise ValueError("--rr_quantum must be at least 1")
        if self.kv_budget_mb < 0:
            raise ValueError("--kv_budget_mb must be >= 0 (0: always recompute a preempted generation's KV)")
        if self.llm_threads < 0:
            raise ValueError("--llm_threads must be >= 0 (0: all CPUs but one)")
        if self.tool_decision not in ("kernel", "model"):
            raise ValueError(f"--tool_decision must be kernel or model, not {self.tool_decision!r}")
        if self.weights not in ("auto", "int8", "fp32") or (self.weights == "int8" and self.eval_device != "cpu"):
            raise ValueError(f"--weights must be auto, int8 or fp32 (int8 on the CPU only), not {self.weights!r}")
        if self.storage_sync not in ("full", "normal"):
            raise ValueError("--storage_sync must be full or normal")
        if self.storage_max_record_bytes < 1 or self.storage_keep_versions < 0:
            raise ValueError("storage_max_record_bytes must be >= 1 and storage_keep_versions >= 0")
        if not (0 < self.mem_block_max_bytes <= self.mem_budget_bytes <= self.mem_global_budget_bytes):
            raise ValueError("memory budgets must satisfy 0 < mem_block_max_bytes <= --mem_budget_bytes "
                             "<= --mem_global_budget_bytes")
        if self.mem_agent_limit_bytes < self.mem_budget_bytes or self.mem_agent_max_blocks < 1:
            raise ValueError("mem_agent_limit_bytes must be >= --mem_budget_bytes and mem_agent_max_blocks >= 1")
        if self.mem_search not in ("hybrid", "bm25"):
            raise ValueError("--mem_search must be hybrid or bm25")
        if self.tool_scheduling not in ("per_tool", "global_lock"):
            raise ValueError("--tool_scheduling must be per_tool or global_lock")
        if self.confirm_policy not in ("deny", "allow"):
            raise ValueError(f"--confirm_policy must be deny or allow, not {self.confirm_policy!r}")
        if self.tool_timeout_s <= 0 or self.confirm_timeout_s <= 0:
            raise ValueError("--tool_timeout_s and confirm_timeout_s must be positive")
        if min(self.quota_llm_tokens, self.quota_syscalls_per_s, self.quota_storage_bytes, self.workspace_max_bytes) < 0 \
                or self.quota_syscall_burst < 1:
            raise ValueError("quotas must be >= 0 (0 = unlimited) and quota_syscall_burst >= 1")
        if self.max_agents < 1 or self.max_children < 0:
            raise ValueError("--max_agents must be >= 1 and --max_children >= 0")
        if self.max_agents_per_app < 0 or self.max_agents_per_tree < 0 or self.storage_max_records < 1:
            raise ValueError("--max_agents_per_app and --max_agents_per_tree must be >= 0 (0: derived from "
                             "--max_agents) and --storage_max_records >= 1")
        if self.history_max_procs < 0 or self.history_max_bytes < 0:
            raise ValueError("--history_max_procs and --history_max_bytes must be >= 0")
        if self.mcp_config:
            from kernel.tools.mcp.config import load

            self.mcp_config = os.path.abspath(self.mcp_config)
            try:
                load(self.mcp_config)
            except ValueError as e:
                raise ValueError(f"--mcp_config: {e}") from None
        self.log_level = str(self.log_level).upper()
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        if self.log_max_bytes < 1024 or self.log_backups < 0 or self.log_keep_runs < 0:
            raise ValueError("--log-max-bytes must be >= 1024, --log-backups and --log-keep-runs >= 0")
        if self.prefix_cache not in ("on", "off") or self.program_aware not in ("on", "off"):
            raise ValueError("--prefix_cache and --program_aware must be on or off")
        if self.prefix_cache_mb < 0 or self.prefill_chunk < 0 or self.max_prompt_tokens < 0 or self.max_agent_kv_mb < 0:
            raise ValueError("--prefix_cache_mb, --prefill_chunk, --max_prompt_tokens and --max_agent_kv_mb "
                             "must be >= 0")
        if self.trace not in ("on", "off"):
            raise ValueError(f"--trace must be on or off, not {self.trace!r}")
        if self.otlp_endpoint and not self.otlp_endpoint.startswith(("http://", "https://")):
            raise ValueError(f"--otlp-endpoint must be an http:// or https:// URL, not {self.otlp_endpoint!r}")
        if self.trace_file:
            self.trace_file = os.path.abspath(os.path.expanduser(self.trace_file))
        if self.confine not in CONFINE_MODES:
            raise ValueError(f"--confine must be one of {', '.join(CONFINE_MODES)}, not {self.confine!r}")
        if min(self.confine_memory_mb, self.confine_processes, self.confine_files, self.confine_cpu_s) < 1:
            raise ValueError("--confine_memory_mb, --confine_processes, --confine_files and --confine_cpu_s "
                             "must be at least 1")
        for name in ("scheduler_log_mode", "agent_log_mode"):
            if getattr(self, name) not in LOG_MODES:
                raise ValueError(f"--{name} must be one of {', '.join(LOG_MODES)}")

    # -- derived process limits: the one place their rules live (kernel.Kernel._admit applies them) --------
    @property
    def user_reserve(self) -> int:
        """Agent slots kept for the user: max(1, max_agents // 8). A spawn from an agent (proc.spawn, or
        the restart of a process an agent spawned) is refused once max_agents - user_reserve agents are
        alive, so a spawn of the user's own (``run``) always finds a slot, whatever agents spawn."""
        return max(1, self.max_agents // 8)

    @property
    def agents_per_app(self) -> int:
        """Live agents of one app: --max_agents_per_app, or max(1, max_agents // 4) when it is 0."""
        return self.max_agents_per_app or max(1, self.max_agents // 4)

    @property
    def agents_per_tree(self) -> int:
        """Live agents of one spawn tree: --max_agents_per_tree, or max(2, max_agents // 8) when it is 0
        (at least a root and one child, where max_agents allows two)."""
        return self.max_agents_per_tree or max(min(2, self.max_agents), self.max_agents // 8)

    @classmethod
    def from_args(cls, args) -> "KernelConfig":
        """Build from an argparse namespace, taking only the fields it has."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names and v is not None})


GROUPS = ("model", "scheduler", "services", "security", "logs")  # --help order; fronts add "shell"

# The kernel's flags: (field, group, help[, argparse extras]). The type comes from the
# field's annotation, the default shown in --help from KernelConfig; both spellings are
# accepted (--llm-name, --llm_name). A new flag is a new line here (or g.add_argument below).
FLAGS = [
    ("llm_name", "model", "model name from kernel/llm/models.json, a HF id or path"),
    ("llm_base_url", "model", "base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1; "
     "unset: the model's entry in models.json, or $OPENAI_BASE_URL for openai:<model>"),
    ("eval_device", "model", "torch device for a local model: cpu, cuda, cuda:0, auto"),
    ("max_gpu_memory", "model", 'JSON map for accelerate, e.g. \'{"0": "24GiB", "cpu": "64GiB"}\''),
    ("max_new_tokens", "model", "default and ceiling of tokens per LLM call"),
    ("llm_threads", "model", "torch threads of the local engine (0: all CPUs but one)"),
    ("weights", "model", "local model weights: auto = int8 on a CPU (about 2x faster than float32), the model's "
     "own dtype on a GPU; int8 (CPU only) or fp32 force one (docs/llm-engine.md)",
     {"choices": ("auto", "int8", "fp32")}),
    ("tool_decision", "model", "local model, llm.chat with tools and tool_choice auto on the user's turn: kernel = "
     "the engine decides whether to call and which tool (relevance of each tool to the request, numbers grounded "
     "in the conversation; docs/llm.md); model = the model's own first token", {"choices": ("kernel", "model")}),
    ("scheduler", "scheduler", "LLM scheduling policy", {"choices": SCHEDULERS}),
    ("max_batch", "scheduler", "most sequences decoded together"),
    ("rr_quantum", "scheduler", "rr/priority: tokens a generation decodes before it may be preempted"),
    ("kv_budget_mb", "scheduler", "MiB of KV cache kept for preempted generations; beyond it their KV is "
     "dropped and recomputed on resume (0: always recompute)"),
    ("prefix_cache", "scheduler", "reuse the KV of tokens already computed (an agent's previous turn, a shared "
     "system prompt) and prefill only what is new", {"choices": ("on", "off")}),
    ("prefix_cache_mb", "scheduler", "MiB of KV the prefix cache may hold, LRU beyond"),
    ("prefill_chunk", "scheduler", "prompt tokens prefilled per engine iteration, between decode steps: bounds "
     "how long one long prompt stalls the others (0: whole prompts)"),
    ("max_prompt_tokens", "scheduler", "prompt tokens per LLM call, E2BIG beyond (0: the model's context)"),
    ("max_agent_kv_mb", "scheduler", "MiB of KV one agent's calls in the engine may need, E2BIG beyond (0: unlimited)"),
    ("program_aware", "scheduler", "admit the call of the agent served least so far first (Autellix PLAS), under "
     "fifo, rr and priority", {"choices": ("on", "off")}),
    ("data_dir", "services", "persistent agent storage, workspaces and groups"),
    ("storage_sync", "services", "full: fsync every storage commit; normal: faster, survives a killed kernel",
     {"choices": ("full", "normal")}),
    ("storage_confirm_overwrite", "services", "ask for confirmation of every fs.write over an existing record "
     "(off: only when it prunes the oldest kept version)"),
    ("mem_budget_bytes", "services", "resident working memory per agent process, bytes"),
    ("mem_global_budget_bytes", "services", "resident working memory of all agents, bytes"),
    ("mem_search", "services", "memory search: hybrid = BM25 + MiniLM embeddings, bm25 = keywords only",
     {"choices": ("hybrid", "bm25")}),
    ("docs_dir", "services", "documents folder for the search_docs tool; unset: <data_dir>/docs"),
    ("tool_timeout_s", "services", "longest run time of one tool call, seconds"),
    ("tool_scheduling", "services", "per_tool: each tool's own parallel limit and queue; global_lock: one "
     "call at a time", {"choices": ("per_tool", "global_lock")}),
    ("restart_max", "services", "restart a crashed agent at most N times per period (0: off)"),
    ("restart_period_s", "services", "the period of --restart-max, seconds"),
    ("confirm_policy", "security", "irreversible actions (delete, overwrite, shell, setgroup) when no user "
     "is asked", {"choices": ("deny", "allow")}),
    ("quota_llm_tokens", "security", "LLM tokens (in + out) per agent app (privilege group), all its processes "
     "together, for the kernel's life (0: unlimited)"),
    ("quota_syscalls_per_s", "security", "syscalls per second per agent app (privilege group), all its "
     "processes together (0: unlimited)"),
    ("quota_storage_bytes", "security", "storage bytes per agent app: every version's data, names and per-row "
     "overhead as stored (kernel/storage/cost.py; 0: unlimited)"),
    ("max_agents", "security", "agent processes alive at once; more spawns get EAGAIN. An eighth of them (at "
     "least 1) is kept for the user's own spawns: agents' proc.spawn may fill only the rest"),
    ("max_children", "security", "live children one agent may spawn; more get EAGAIN"),
    ("max_agents_per_app", "security", "live agents of one app; an agent's proc.spawn past it gets EAGAIN (0: a "
     "quarter of --max-agents; the user's own spawns are held by --max-agents alone)"),
    ("max_agents_per_tree", "security", "live agents in one spawn tree, a user-started agent and everything it "
     "spawned; proc.spawn past it gets EAGAIN (0: an eighth of --max-agents, at least 2)"),
    ("storage_max_records", "security", "records one agent app may keep in storage; more get ENOSPC"),
    ("history_max_procs", "services", "ended processes kept for ps -a, info and wait"),
    ("history_max_bytes", "services", "bytes of ended processes' tasks, results and errors kept in kernel "
     "memory; results over 64 KiB live whole under <log-dir>/results"),
    ("mcp_config", "services", 'MCP servers whose tools agents may call (mcp__<server>__<tool>): a JSON file '
     '{"mcpServers": {"<server>": {"command": ..., "args": [...], "env": {...}}}}'),
    ("confine", "security", "confinement of agent processes: auto = every layer this machine supports, missing "
     "ones named at boot; strict = refuse to start agents when a layer is missing; landlock = the fallback of a "
     "machine without user namespaces (Landlock, seccomp, rlimits), chosen on purpose; off = unconfined",
     {"choices": CONFINE_MODES}),
    ("confine_allow_network", "security", 'let agents whose config.json says "network": true use the network'),
    ("confine_memory_mb", "security", "address space limit per agent process, MiB"),
    ("confine_processes", "security", "processes per agent, descendants included"),
    ("confine_files", "security", "open files per agent process"),
    ("confine_cpu_s", "security", "CPU seconds per agent process"),
    ("scheduler_log_mode", "logs", "kernel/scheduler/audit logs: console, or files under --log-dir",
     {"choices": LOG_MODES}),
    ("agent_log_mode", "logs", "agent output: console, or one file per agent run", {"choices": LOG_MODES}),
    ("log_dir", "logs", "where file logs go"),
    ("log_level", "logs", "least severe kernel record logged", {"choices": LOG_LEVELS, "type": str.upper}),
    ("log_max_bytes", "logs", "a log file rotates when it passes this many bytes"),
    ("log_backups", "logs", "rotated copies kept of each log file"),
    ("log_keep_runs", "logs", "run files kept per kind and per agent app, oldest deleted first (0: all)"),
    ("trace", "logs", "record a span for every call of every agent (trace PID, trace --timeline, export)",
     {"choices": ("on", "off")}),
    ("trace_content", "logs", "let spans carry previews of prompts, completions and tool arguments/results "
     "(off: sizes and keyed hashes only)"),
    ("trace_file", "logs", "append every finished span to this file, one JSON object per line (OTLP/JSON names)"),
    ("otlp_endpoint", "logs", "send spans over OTLP/HTTP to this collector (e.g. http://localhost:4318), GenAI "
     "semantic conventions, one trace per agent"),
]


def field_default(name: str):
    """KernelConfig's default for ``name`` (the cli.HIDDEN_DEFAULT marker for non-fields)."""
    from kernel.cli import HIDDEN_DEFAULT

    for f in fields(KernelConfig):
        if f.name == name:
            return f.default_factory() if f.default_factory is not MISSING else f.default
    return HIDDEN_DEFAULT


def _argparse_kind(name: str) -> dict:
    """type= (or a store_const action for bools) from the field's annotation (a string here)."""
    ann = next(f.type for f in fields(KernelConfig) if f.name == name)
    if ann == "bool":
        return {"action": "store_const", "const": True}
    for word, typ in (("int", int), ("float", float)):
        if ann.split(" | ")[0] == word:
            return {"type": typ}
    return {}


class _ConfineCheck(argparse.Action):
    """``--confine-check``: kernel/confine/doctor.py's report, then exit (like --version)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from kernel.confine import doctor

        parser.exit(doctor.main(values or "text", no_bwrap=getattr(namespace, "confine", None) == "landlock"))


def add_kernel_args(parser) -> None:
    """The kernel's command-line flags in GROUPS (fronts add their "shell" group after them)."""
    from kernel.cli import FlagGroup, add_version

    add_version(parser)
    groups = {name: FlagGroup(parser.add_argument_group(name), field_default) for name in GROUPS}
    for name, group, help_text, *extra in FLAGS:
        kw = {**_argparse_kind(name), **(extra[0] if extra else {})}
        groups[group].add_argument(f"--{name}", help=help_text, **kw)
    groups["security"].add_argument(
        "--confine_check", nargs="?", const="text", choices=("text", "json"), action=_ConfineCheck,
        help="print which confinement layers hold on this machine and why not (json: as one object), then exit: "
             "0 when every layer holds, 1 when one is missing")
    g = groups["services"]  # noqa: F841  flags added below as g.add_argument("--x_y", ...) get both spellings and defaults
