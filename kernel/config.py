"""KernelConfig: the kernel's config, one record per service, built at the CLI edge.

Each service has its own record (LLMConfig, SchedConfig, ProcessConfig, StorageConfig,
MemoryConfig, ToolsConfig, AccessConfig, ConfineConfig, LogConfig, TraceConfig) and checks
its own values when it is made; KernelConfig composes them (``config.sched.max_batch``).
A field that users set is declared with its flag next to it:

    max_batch: int = opt("max_batch", 16, "most sequences decoded together")

``opt(key, default, help)``: ``key`` is the flag (``--max-batch``, ``--max_batch``) and the
name ``KernelConfig.from_flags`` takes; the help text, its group (the record's GROUP), the
argparse type (from the annotation) and the default shown in ``--help`` all come from the
field, so a new flag is one line in its record. A field without help is set only from code
(``from_flags(kill_grace_s=0.5)``), never from the command line.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

EMBEDDED_MODEL = "smollm2-135m-instruct"
LOG_MODES = ("console", "file")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SCHEDULERS = ("serial", "fifo", "rr", "priority")
CONFINE_MODES = ("auto", "strict", "landlock", "off")
ON_OFF = ("on", "off")
WEIGHT_MODES = ("auto", "int8", "fp16", "fp32")  # --weights (kernel.llm.model.resolve_weights)


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


def opt(key: str, default=MISSING, help: str = "", *, factory=None, **argparse_kw):
    """A config field named ``key`` outside its record; with ``help`` it is also the flag ``--key``.
    ``argparse_kw`` (choices, type) go to argparse as they are."""
    meta = {"key": key, "help": help, "argparse": argparse_kw}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


class Record:
    """A service's config: its fields carry their keys and flags (opt); ``check`` runs when it is made."""

    GROUP = ""  # its --help group

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        pass


@dataclass
class LLMConfig(Record):
    """The model and the engine that runs it (kernel/llm)."""

    GROUP = "model"
    name: str = opt("llm_name", EMBEDDED_MODEL, "model name from kernel/llm/models.json, a HF id or path")
    base_url: str | None = opt("llm_base_url", None, "base URL of an OpenAI-compatible server, e.g. "
                               "http://localhost:8000/v1; unset: the model's entry in models.json, or "
                               "$OPENAI_BASE_URL for openai:<model>")
    device: str = opt("eval_device", "cpu", "torch device for a local model: cpu, cuda, cuda:0, auto")
    max_gpu_memory: dict | str | None = opt("max_gpu_memory", None, 'JSON map for accelerate, e.g. '
                                            '\'{"0": "24GiB", "cpu": "64GiB"}\'')
    max_new_tokens: int = opt("max_new_tokens", 256, "default and ceiling of tokens per LLM call")
    threads: int = opt("llm_threads", 0, "torch threads of the local engine (0: all CPUs but one)")
    weights: str = opt("weights", "auto", "local model weights: auto = int8 on a CPU with AVX-512 VNNI (about "
                       "1.5x the decode speed of float32), float16 weights with float32 activations on other "
                       "CPUs (there int8's 7-bit activations answer worse), the model's own dtype on a GPU; "
                       "int8, fp16 (CPU only) or fp32 force one (docs/llm-engine.md)", choices=WEIGHT_MODES)
    tool_decision: str = opt("tool_decision", "kernel", "local model, llm.chat with tools on the user's turn: "
                             "kernel = the engine decides whether an auto reply calls and which tool (relevance "
                             "of each tool to the request, numbers grounded in the conversation) and adds the "
                             "calls the request lists or describes again (parallel calls; docs/llm.md); model = "
                             "the model's own choice", choices=("kernel", "model"))
    seed: int = opt("seed", 0)

    def check(self) -> None:
        if isinstance(self.max_gpu_memory, str):
            try:
                self.max_gpu_memory = json.loads(self.max_gpu_memory) if self.max_gpu_memory else None
            except ValueError as e:
                raise ValueError(f"--max_gpu_memory must be a JSON map like '{{\"0\": \"24GiB\"}}': {e}") from None
        _check(self.max_gpu_memory is None or isinstance(self.max_gpu_memory, dict),
               "--max_gpu_memory must be a JSON object mapping devices to sizes")
        _check(self.max_new_tokens >= 1, "--max_new_tokens must be at least 1")
        _check(self.threads >= 0, "--llm_threads must be >= 0 (0: all CPUs but one)")
        _check(self.tool_decision in ("kernel", "model"),
               f"--tool_decision must be kernel or model, not {self.tool_decision!r}")
        _check(self.weights in WEIGHT_MODES and not (self.weights in ("int8", "fp16") and self.device != "cpu"),
               f"--weights must be auto, int8, fp16 or fp32 (int8 and fp16 on the CPU only), not {self.weights!r}")


@dataclass
class SchedConfig(Record):
    """The LLM scheduler and the engine's agent-aware serving (kernel/llm: scheduler, prefix, iteration)."""

    GROUP = "scheduler"
    policy: str = opt("scheduler", "fifo", "LLM scheduling policy", choices=SCHEDULERS)
    max_batch: int = opt("max_batch", 16, "most sequences decoded together")
    rr_quantum: int = opt("rr_quantum", 16, "rr/priority: tokens a generation decodes before it may be preempted")
    kv_budget_mb: float = opt("kv_budget_mb", 1024.0, "MiB of KV cache kept for preempted generations; beyond "
                              "it their KV is dropped and recomputed on resume (0: always recompute)")
    prefix_cache: str = opt("prefix_cache", "on", "reuse the KV of tokens already computed (an agent's previous "
                            "turn, a shared system prompt) and prefill only what is new", choices=ON_OFF)
    prefix_cache_mb: float = opt("prefix_cache_mb", 256.0, "MiB of KV the prefix cache may hold, LRU beyond")
    prefill_chunk: int = opt("prefill_chunk", 64, "prompt tokens prefilled per engine iteration, between decode "
                             "steps: bounds how long one long prompt stalls the others (0: whole prompts)")
    max_prompt_tokens: int = opt("max_prompt_tokens", 0, "prompt tokens per LLM call, E2BIG beyond (0: the "
                                 "model's context)")
    max_agent_kv_mb: float = opt("max_agent_kv_mb", 0.0, "MiB of KV one agent's calls in the engine may need, "
                                 "E2BIG beyond (0: unlimited)")
    program_aware: str = opt("program_aware", "off", "admit the call of the agent served least so far first "
                             "(Autellix PLAS), under fifo, rr and priority", choices=ON_OFF)

    def check(self) -> None:
        _check(self.policy in SCHEDULERS, f"--scheduler must be one of {', '.join(SCHEDULERS)}, not {self.policy!r}")
        _check(self.max_batch >= 1, "--max_batch must be at least 1")
        _check(self.rr_quantum >= 1, "--rr_quantum must be at least 1")
        _check(self.kv_budget_mb >= 0, "--kv_budget_mb must be >= 0 (0: always recompute a preempted "
                                       "generation's KV)")
        _check(self.prefix_cache in ON_OFF and self.program_aware in ON_OFF,
               "--prefix_cache and --program_aware must be on or off")
        _check(min(self.prefix_cache_mb, self.prefill_chunk, self.max_prompt_tokens, self.max_agent_kv_mb) >= 0,
               "--prefix_cache_mb, --prefill_chunk, --max_prompt_tokens and --max_agent_kv_mb must be >= 0")


@dataclass
class ProcessConfig(Record):
    """Agent processes: how many, supervision, the ended-process history (kernel/kernel.py, kernel/process)."""

    GROUP = "processes"
    max_agents: int = opt("max_agents", 256, "agent processes alive at once; more spawns get EAGAIN. An eighth "
                          "of them (at least 1) is kept for the user's own spawns: agents' proc.spawn may fill "
                          "only the rest")
    max_children: int = opt("max_children", 16, "live children one agent may spawn; more get EAGAIN")
    max_agents_per_app: int = opt("max_agents_per_app", 0, "live agents of one app; an agent's proc.spawn past "
                                  "it gets EAGAIN (0: a quarter of --max-agents; the user's own spawns are held "
                                  "by --max-agents alone)")
    max_agents_per_tree: int = opt("max_agents_per_tree", 0, "live agents in one spawn tree, a user-started agent "
                                   "and everything it spawned; proc.spawn past it gets EAGAIN (0: an eighth of "
                                   "--max-agents, at least 2)")
    restart_max: int = opt("restart_max", 0, "restart a crashed agent at most N times per period (0: off)")
    restart_period_s: float = opt("restart_period_s", 60.0, "the period of --restart-max, seconds")
    history_max_procs: int = opt("history_max_procs", 1000, "ended processes kept for ps -a, info and wait")
    history_max_bytes: int = opt("history_max_bytes", 64 << 20, "bytes of ended processes' tasks, results and "
                                 "errors kept in kernel memory; results over 64 KiB live whole under "
                                 "<log-dir>/results")
    kill_grace_s: float = opt("kill_grace_s", 2.0)  # SIGTERM -> SIGKILL delay when killing an agent

    def check(self) -> None:
        _check(self.max_agents >= 1 and self.max_children >= 0, "--max_agents must be >= 1 and --max_children >= 0")
        _check(self.max_agents_per_app >= 0 and self.max_agents_per_tree >= 0,
               "--max_agents_per_app and --max_agents_per_tree must be >= 0 (0: derived from --max_agents)")
        _check(self.restart_max >= 0 and self.restart_period_s > 0,
               "--restart_max must be >= 0 and --restart_period_s > 0")
        _check(self.history_max_procs >= 0 and self.history_max_bytes >= 0,
               "--history_max_procs and --history_max_bytes must be >= 0")

    # -- derived limits: the one place their rules live (kernel.Kernel._admit applies them) --------
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


@dataclass
class StorageConfig(Record):
    """The storage manager (kernel/storage): <data_dir>/storage.sqlite3."""

    GROUP = "storage"
    sync: str = opt("storage_sync", "full", "full: fsync every storage commit (survives power loss); normal: "
                    "faster, survives a killed kernel", choices=("full", "normal"))
    confirm_overwrite: bool = opt("storage_confirm_overwrite", False, "ask for confirmation of every fs.write "
                                  "over an existing record (off: only when it prunes the oldest kept version)")
    max_records: int = opt("storage_max_records", 10_000,
                           "records one agent app may keep in storage; more get ENOSPC")
    max_record_bytes: int = opt("storage_max_record_bytes", 512 * 1024)  # one version of one record
    keep_versions: int = opt("storage_keep_versions", 256)  # versions kept per record, oldest pruned first (0: all)

    def check(self) -> None:
        _check(self.sync in ("full", "normal"), "--storage_sync must be full or normal")
        _check(self.max_record_bytes >= 1 and self.keep_versions >= 0,
               "storage_max_record_bytes must be >= 1 and storage_keep_versions >= 0")
        _check(self.max_records >= 1, "--storage_max_records must be >= 1")


@dataclass
class MemoryConfig(Record):
    """The memory manager (kernel/memory): budgets in bytes of UTF-8 content."""

    GROUP = "memory"
    budget_bytes: int = opt("mem_budget_bytes", 64 * 1024, "resident working memory per agent process, bytes")
    global_budget_bytes: int = opt("mem_global_budget_bytes", 16 * 1024 * 1024, "resident working memory of all "
                                   "agents, bytes")
    search: str = opt("mem_search", "hybrid", "memory search: hybrid = BM25 + MiniLM embeddings, bm25 = keywords "
                      "only", choices=("hybrid", "bm25"))
    agent_limit_bytes: int = opt("mem_agent_limit_bytes", 8 * 1024 * 1024)  # resident + evicted per process
    agent_max_blocks: int = opt("mem_agent_max_blocks", 20_000)  # blocks per process
    block_max_bytes: int = opt("mem_block_max_bytes", 32 * 1024)  # one block

    def check(self) -> None:
        _check(0 < self.block_max_bytes <= self.budget_bytes <= self.global_budget_bytes,
               "memory budgets must satisfy 0 < mem_block_max_bytes <= --mem_budget_bytes <= "
               "--mem_global_budget_bytes")
        _check(self.agent_limit_bytes >= self.budget_bytes and self.agent_max_blocks >= 1,
               "mem_agent_limit_bytes must be >= --mem_budget_bytes and mem_agent_max_blocks >= 1")
        _check(self.search in ("hybrid", "bm25"), "--mem_search must be hybrid or bm25")


@dataclass
class ToolsConfig(Record):
    """The tool manager (kernel/tools) and the MCP servers it hosts (kernel/tools/mcp)."""

    GROUP = "tools"
    timeout_s: float = opt("tool_timeout_s", 60.0, "longest run time of one tool call, seconds")
    scheduling: str = opt("tool_scheduling", "per_tool", "per_tool: each tool's own parallel limit and queue; "
                          "global_lock: one call at a time", choices=("per_tool", "global_lock"))
    docs_dir: str = opt("docs_dir", "", "documents folder for the search_docs tool; unset: <data_dir>/docs")
    mcp_config: str = opt("mcp_config", "", 'MCP servers whose tools agents may call (mcp__<server>__<tool>): a '
                          'JSON file {"mcpServers": {"<server>": {"command": ..., "args": [...], "env": {...}}}}')
    workspace_max_bytes: int = opt("workspace_max_bytes", 64 << 20)  # one agent app's workspace

    def check(self) -> None:
        _check(self.timeout_s > 0, "--tool_timeout_s must be positive")
        _check(self.scheduling in ("per_tool", "global_lock"), "--tool_scheduling must be per_tool or global_lock")
        _check(self.workspace_max_bytes >= 0, "workspace_max_bytes must be >= 0")
        if self.mcp_config:  # absolute: the kernel reads it whatever its cwd; its content is checked by the front
            self.mcp_config = os.path.abspath(os.path.expanduser(self.mcp_config))


@dataclass
class AccessConfig(Record):
    """Access control (kernel/access): confirmations of irreversible actions and quotas per agent app."""

    GROUP = "access"
    confirm_policy: str = opt("confirm_policy", "deny", "irreversible actions (delete, overwrite, shell, setgroup) "
                              "when no user is asked", choices=("deny", "allow"))
    quota_llm_tokens: int = opt("quota_llm_tokens", 0, "LLM tokens (in + out) per agent app (privilege group), all "
                                "its processes together, for the kernel's life (0: unlimited)")
    quota_syscalls_per_s: float = opt("quota_syscalls_per_s", 0.0, "syscalls per second per agent app (privilege "
                                      "group), all its processes together (0: unlimited)")
    quota_storage_bytes: int = opt("quota_storage_bytes", 0, "storage bytes per agent app: every version's data, "
                                   "names and per-row overhead as stored (kernel/storage/cost.py; 0: unlimited)")
    quota_syscall_burst: int = opt("quota_syscall_burst", 50)  # bucket depth of quota_syscalls_per_s
    interactive_confirm: bool = opt("interactive_confirm", False)  # ask the user (y/N); the REPL sets it
    confirm_timeout_s: float = opt("confirm_timeout_s", 120.0)  # an unanswered confirmation is denied after this

    def check(self) -> None:
        _check(self.confirm_policy in ("deny", "allow"),
               f"--confirm_policy must be deny or allow, not {self.confirm_policy!r}")
        _check(self.confirm_timeout_s > 0, "confirm_timeout_s must be positive")
        _check(min(self.quota_llm_tokens, self.quota_syscalls_per_s, self.quota_storage_bytes) >= 0
               and self.quota_syscall_burst >= 1, "quotas must be >= 0 (0 = unlimited) and quota_syscall_burst >= 1")


@dataclass
class ConfineConfig(Record):
    """Confinement of agent processes (kernel/confine): auto = every layer the machine has."""

    GROUP = "confinement"
    mode: str = opt("confine", "auto", "confinement of agent processes: auto = every layer this machine supports, "
                    "missing ones named at boot; strict = refuse to start agents when a layer is missing; landlock "
                    "= the fallback of a machine without user namespaces (Landlock, seccomp, rlimits), chosen on "
                    "purpose; off = unconfined", choices=CONFINE_MODES)
    allow_network: bool = opt("confine_allow_network", False, 'let agents whose config.json says "network": true '
                              'use the network')
    memory_mb: int = opt("confine_memory_mb", 2048, "address space limit per agent process, MiB")
    processes: int = opt("confine_processes", 64, "processes per agent, descendants included")
    files: int = opt("confine_files", 1024, "open files per agent process")
    cpu_s: int = opt("confine_cpu_s", 3600, "CPU seconds per agent process")

    def check(self) -> None:
        _check(self.mode in CONFINE_MODES, f"--confine must be one of {', '.join(CONFINE_MODES)}, not {self.mode!r}")
        _check(min(self.memory_mb, self.processes, self.files, self.cpu_s) >= 1,
               "--confine_memory_mb, --confine_processes, --confine_files and --confine_cpu_s must be at least 1")


@dataclass
class LogConfig(Record):
    """The kernel's logs and agents' output (kernel/logs.py)."""

    GROUP = "logs"
    scheduler_mode: str = opt("scheduler_log_mode", "console", "kernel/scheduler/audit logs: console, or files "
                              "under --log-dir", choices=LOG_MODES)
    agent_mode: str = opt("agent_log_mode", "console", "agent output: console, or one file per agent run",
                          choices=LOG_MODES)
    dir: str = opt("log_dir", help="where file logs go", factory=lambda: str(state_dir() / "logs"))
    level: str = opt("log_level", "INFO", "least severe kernel record logged", choices=LOG_LEVELS, type=str.upper)
    max_bytes: int = opt("log_max_bytes", 10 * 1024 * 1024, "a log file rotates when it passes this many bytes")
    backups: int = opt("log_backups", 5, "rotated copies kept of each log file")
    keep_runs: int = opt("log_keep_runs", 50, "run files kept per kind and per agent app, oldest deleted first "
                         "(0: all)")

    def check(self) -> None:
        # absolute: the kernel, its agents and a daemon's clients all name the same folder, whatever their cwd
        self.dir = os.path.abspath(os.path.expanduser(self.dir))
        self.level = str(self.level).upper()
        _check(self.level in LOG_LEVELS, f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {self.level!r}")
        _check(self.max_bytes >= 1024 and self.backups >= 0 and self.keep_runs >= 0,
               "--log-max-bytes must be >= 1024, --log-backups and --log-keep-runs >= 0")
        _check(self.scheduler_mode in LOG_MODES and self.agent_mode in LOG_MODES,
               f"--scheduler_log_mode and --agent_log_mode must be one of {', '.join(LOG_MODES)}")


@dataclass
class TraceConfig(Record):
    """Tracing (kernel/trace): a span per call of every process; views: the shell's trace command, export."""

    GROUP = "tracing"
    mode: str = opt("trace", "on", "record a span for every call of every agent (trace PID, trace --timeline, "
                    "export)", choices=ON_OFF)
    content: bool = opt("trace_content", False, "let spans carry previews of prompts, completions and tool "
                        "arguments/results (off: sizes and keyed hashes only)")
    file: str = opt("trace_file", "", "append every finished span to this file, one JSON object per line "
                    "(OTLP/JSON names)")
    otlp_endpoint: str = opt("otlp_endpoint", "", "send spans over OTLP/HTTP to this collector (e.g. "
                             "http://localhost:4318), GenAI semantic conventions, one trace per agent")

    def check(self) -> None:
        _check(self.mode in ON_OFF, f"--trace must be on or off, not {self.mode!r}")
        _check(not self.otlp_endpoint or self.otlp_endpoint.startswith(("http://", "https://")),
               f"--otlp-endpoint must be an http:// or https:// URL, not {self.otlp_endpoint!r}")
        if self.file:
            self.file = os.path.abspath(os.path.expanduser(self.file))


@dataclass
class KernelConfig:
    """The kernel's config: the data folder every service shares, and one record per service (a new service's
    record is one field here; RECORDS, the keys and the flags follow from it)."""

    data_dir: str = opt("data_dir", help="persistent agent storage, workspaces and groups",
                        factory=lambda: str(state_dir() / "data"))
    llm: LLMConfig = field(default_factory=LLMConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    procs: ProcessConfig = field(default_factory=ProcessConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    confine: ConfineConfig = field(default_factory=ConfineConfig)
    logs: LogConfig = field(default_factory=LogConfig)
    trace: TraceConfig = field(default_factory=TraceConfig)

    GROUP = "storage"  # where --data-dir shows in --help

    def __post_init__(self):
        # absolute: the kernel, its agents and a daemon's clients all name the same folder, whatever their cwd
        self.data_dir = os.path.abspath(os.path.expanduser(self.data_dir))

    @classmethod
    def from_flags(cls, **values) -> "KernelConfig":
        """Built from keys as the command line names them (``llm_name="gpt-4", max_batch=4``); each record
        checks its values. An unknown key is a TypeError, as a wrong keyword is."""
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise TypeError(f"KernelConfig has no setting {', '.join(unknown)}")
        parts: dict[str, dict] = {}
        for key, value in values.items():
            owner, name = KEYS[key]
            parts.setdefault(owner, {})[name] = value
        top = parts.pop("", {})
        return cls(**top, **{owner: RECORDS[owner](**kw) for owner, kw in parts.items()})

    @classmethod
    def from_args(cls, args) -> "KernelConfig":
        """From an argparse namespace: the kernel flags it has (argparse leaves the ones not given None)."""
        return cls.from_flags(**{k: v for k, v in vars(args).items() if k in KEYS and v is not None})

    def flags(self) -> dict:
        """Every setting by its key, the inverse of from_flags."""
        out = {}
        for key, (owner, name) in KEYS.items():
            out[key] = getattr(getattr(self, owner) if owner else self, name)
        return out

    def with_flags(self, **values) -> "KernelConfig":
        """A copy with these settings changed (keys as from_flags takes them), checked again."""
        return KernelConfig.from_flags(**{**self.flags(), **values})


RECORDS = {f.name: f.default_factory for f in fields(KernelConfig)  # attribute -> record class, in --help order
           if isinstance(f.default_factory, type) and issubclass(f.default_factory, Record)}


def _keys() -> dict[str, tuple[str, str]]:
    """key -> (record attribute of KernelConfig, or "" for its own fields; field name)."""
    out: dict[str, tuple[str, str]] = {}
    for owner, cls in (("", KernelConfig), *RECORDS.items()):
        for f in fields(cls):
            key = f.metadata.get("key")
            if key:
                assert key not in out, f"config key {key} declared twice"
                out[key] = (owner, f.name)
    return out


KEYS = _keys()


def flag_fields():
    """(key, field, group) of every field with a flag, in --help order: the records' as RECORDS lists them,
    then KernelConfig's own (aios_shell/flags.py makes them flags)."""
    for cls in (*RECORDS.values(), KernelConfig):
        for f in fields(cls):
            if f.metadata.get("help"):
                yield f.metadata["key"], f, cls.GROUP


FLAGS = [(key, group) for key, _, group in flag_fields()]  # (key, --help group) of every kernel flag
GROUPS = tuple(dict.fromkeys(group for _, group in FLAGS))  # --help order; fronts add "shell"


def field_default(key: str):
    """The default of the setting ``key`` (KeyError for a name that is not a setting)."""
    owner, name = KEYS[key]
    f = next(f for f in fields(RECORDS[owner] if owner else KernelConfig) if f.name == name)
    return f.default_factory() if f.default_factory is not MISSING else f.default
