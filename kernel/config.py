"""KernelConfig: the one config object of the kernel, built at the CLI edge."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

EMBEDDED_MODEL = "smollm2-135m-instruct"
LOG_MODES = ("console", "file")
SCHEDULERS = ("serial", "fifo", "rr", "priority")
CONFINE_MODES = ("auto", "strict", "off")


def state_dir() -> Path:
    """User state directory (history, data), XDG style."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "aios"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aios"


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
    scheduler_log_mode: str = "console"
    agent_log_mode: str = "console"
    log_dir: str = "logs"
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
    # Confinement of agent processes (kernel/confine): auto = every layer the machine has.
    confine: str = "auto"  # auto | strict (refuse to start agents when a layer is missing) | off
    confine_allow_network: bool = False  # let apps whose profile says "network": true reach the network
    confine_memory_mb: int = 2048  # address space per agent process (profile "limits": {"memory_mb": N})
    confine_processes: int = 64  # processes per agent, itself and descendants ("processes")
    confine_files: int = 1024  # open files per agent process ("files")
    confine_cpu_s: int = 3600  # CPU seconds per agent process ("cpu_s")

    def __post_init__(self):
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
        if self.confine not in CONFINE_MODES:
            raise ValueError(f"--confine must be one of {', '.join(CONFINE_MODES)}, not {self.confine!r}")
        if min(self.confine_memory_mb, self.confine_processes, self.confine_files, self.confine_cpu_s) < 1:
            raise ValueError("--confine_memory_mb, --confine_processes, --confine_files and --confine_cpu_s "
                             "must be at least 1")
        for name in ("scheduler_log_mode", "agent_log_mode"):
            if getattr(self, name) not in LOG_MODES:
                raise ValueError(f"--{name} must be one of {', '.join(LOG_MODES)}")

    @classmethod
    def from_args(cls, args) -> "KernelConfig":
        """Build from an argparse namespace, taking only the fields it has."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names and v is not None})


def add_kernel_args(parser) -> None:
    """The kernel's command-line flags, shared by main.py, simulator.py and bench/."""
    g = parser.add_argument_group("kernel")
    g.add_argument("--llm_name", help=f"model name from kernel/llm/models.json, a HF id or path (default {EMBEDDED_MODEL})")
    g.add_argument("--llm_base_url", help="base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1 "
                   "(default: the model's entry in models.json, or $OPENAI_BASE_URL for openai:<model>)")
    g.add_argument("--eval_device", help="torch device for a local model: cpu, cuda, cuda:0, auto (default cpu)")
    g.add_argument("--max_gpu_memory", help='JSON map for accelerate, e.g. \'{"0": "24GiB", "cpu": "64GiB"}\'')
    g.add_argument("--max_new_tokens", type=int, help="default and ceiling of tokens per LLM call (default 256)")
    g.add_argument("--scheduler", choices=SCHEDULERS, help="LLM scheduling policy (default fifo)")
    g.add_argument("--max_batch", type=int, help="most sequences decoded together (default 16)")
    g.add_argument("--rr_quantum", type=int, help="rr/priority: tokens a generation decodes before it may be "
                   "preempted (default 16)")
    g.add_argument("--kv_budget_mb", type=float, help="MiB of KV cache kept for preempted generations; "
                   "beyond it their KV is dropped and recomputed on resume (default 1024; 0: always recompute)")
    g.add_argument("--llm_threads", type=int, help="torch threads of the local engine (default 0: all CPUs but one)")
    g.add_argument("--scheduler_log_mode", choices=LOG_MODES, help="kernel/scheduler logs: console or files under logs/")
    g.add_argument("--agent_log_mode", choices=LOG_MODES, help="agent output: console or one file per agent run")
    g.add_argument("--log_dir", help="where file logs go (default logs/)")
    g.add_argument("--restart_max", type=int, help="restart a crashed agent at most N times per period (default 0: off)")
    g.add_argument("--restart_period_s", type=float, help="the period of --restart_max in seconds (default 60)")
    g.add_argument("--data_dir", help="persistent agent storage (default ~/.local/state/aios/data)")
    g.add_argument("--storage_sync", choices=("full", "normal"),
                   help="full: fsync every storage commit (default); normal: faster, survives a killed kernel")
    g.add_argument("--storage_confirm_overwrite", action="store_const", const=True,
                   help="ask for confirmation of every fs.write over an existing record (default: only when "
                        "it prunes the oldest kept version)")
    g.add_argument("--mem_budget_bytes", type=int, help="resident working memory per agent process (default 64 KiB)")
    g.add_argument("--mem_global_budget_bytes", type=int, help="resident working memory of all agents (default 16 MiB)")
    g.add_argument("--mem_search", choices=("hybrid", "bm25"),
                   help="memory search: hybrid = BM25 + MiniLM embeddings (default), bm25 = keywords only")
    g.add_argument("--confirm_policy", choices=("deny", "allow"),
                   help="irreversible actions (delete, overwrite, shell, setgroup) when no user is asked (default deny)")
    g.add_argument("--docs_dir", help="documents folder for the search_docs tool (default <data_dir>/docs)")
    g.add_argument("--tool_timeout_s", type=float, help="longest run time of one tool call (default 60)")
    g.add_argument("--tool_scheduling", choices=("per_tool", "global_lock"),
                   help="per_tool: each tool's own parallel limit and queue (default); global_lock: one call at a time")
    g.add_argument("--quota_llm_tokens", type=int, help="LLM tokens (in + out) per agent process (default 0: unlimited)")
    g.add_argument("--quota_syscalls_per_s", type=float, help="syscalls per second per agent process (default 0: unlimited)")
    g.add_argument("--quota_storage_bytes", type=int, help="storage bytes per agent app, all versions (default 0: unlimited)")
    c = parser.add_argument_group("confinement of agents (README: Security model)")
    c.add_argument("--confine", choices=CONFINE_MODES, help="auto: every layer this machine supports, missing ones "
                   "named at boot (default); strict: refuse to start agents when a layer is missing; off: unconfined")
    c.add_argument("--confine_allow_network", action="store_const", const=True,
                   help='let agents whose config.json says "network": true use the network (default: no agent may)')
    c.add_argument("--confine_memory_mb", type=int, help="address space limit per agent process (default 2048)")
    c.add_argument("--confine_processes", type=int, help="processes per agent, descendants included (default 64)")
    c.add_argument("--confine_files", type=int, help="open files per agent process (default 1024)")
    c.add_argument("--confine_cpu_s", type=int, help="CPU seconds per agent process (default 3600)")
