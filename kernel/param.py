"""The kernel's fixed limits, in one place (like xv6's param.h).

Limits a user may want to change are KernelConfig fields (kernel/config.py: one
flag each, with its default written once there). These are the ones that are
not flags: sizes, counts and times that bound what an agent, a model server, an
MCP server or a daemon client can make the kernel hold or wait for. Modules
import them by name, so each is defined here only. The limits every side of a
wire shares (frame size, task length, priority range) are the protocol's:
kernel/protocol/limits.py.
"""

# -- Agent channels and the process table ----------------------------------------------------------
MAX_OUTBUF = 64 << 20  # bytes of unread replies before the kernel stops buffering for an agent
LOG_TAIL = 2000  # lines of console-mode output kept per agent for `logs`
ENDED_OUTPUT_KEPT = 256  # ended agents whose console output `logs` can still show
OUTPUT_LINE_MAX = 8192  # characters of one console-mode output line kept for `logs`
ERROR_KEPT = 4000  # characters of a reported failure (a traceback's end) kept in the table
INLINE_MAX = 64 * 1024  # bytes of a result's JSON kept in kernel memory; larger results go to a file
PREVIEW = 4096  # characters of a large result kept in the table (ps, exit events)

# -- LLM engines -----------------------------------------------------------------------------------
AGING_S = 2.0  # seconds of waiting worth one priority level
HEADROOM = 64  # spare columns allocated past the filled part (a reallocation every HEADROOM steps at most)
RATE_WINDOW_S = 5.0  # tokens_per_s is measured over the last few seconds
PREFILL_PAD_WASTE = 1.25  # a prefill group's padded tokens stay <= this x its real tokens
PREFILL_MAX_TOKENS = 8192  # padded tokens in one prefill pass (bounds its activation memory)
MIN_HIT = 16  # fewer cached tokens than this are recomputed (a grouped prefill beats a one-row pass)
MIN_SHARED = 32  # leading tokens two new prompts must share for one to wait for the other
MIN_CHUNK = 8  # fewest tokens a chunk feeds, however deep into the prompt
LONG_ROW_TOKENS = 2048  # a sequence at least this long decodes in its own cache, not the padded batch
MAX_SCHEMA_BYTES = 64 * 1024  # JSON text of response_format + tools, per request
MAX_TOOLS = 64  # tool definitions one llm.chat may pass
MAX_CALL_DEPTH = 32  # nesting of the arguments of an earlier tool call in llm.chat messages
CACHE_GRAMMARS = 64  # compiled matchers kept (LRU) to copy for repeated grammars

# -- Remote models ---------------------------------------------------------------------------------
MAX_BACKOFF_S = 30.0  # longest wait before retrying a remote call (Retry-After included)
CHECK_TIMEOUT_S = 10.0  # a remote backend's start-up check (its model listing)

# -- Memory ----------------------------------------------------------------------------------------
LOW_WATERMARK = 0.9  # evict down to this fraction of the budget that was exceeded
SEARCH_EMBEDS = 64  # blocks without a vector a search embeds along with its query, at most
MAX_GET_BYTES = 1 << 20  # content one mem.get returns, at most (bounds the swap-ins one call does on the loop)
EMBED_BACKLOG = 1024  # background texts waiting, at most

# -- Tools and confinement -------------------------------------------------------------------------
TOOL_MAX_RESULT = 4 << 20  # bytes of JSON a tool may return
TMP_BYTES = 64 << 20  # size of the agent's private /tmp (tmpfs; counts against host memory)
WATCH_PERIOD_S = 0.25  # seconds between two looks at every agent's process tree and workspace (kernel/process/watch.py)
MEM_DUTY = 10  # a tree whose PSS took t CPU seconds to measure is measured again after MEM_DUTY x t at the soonest
WALK_DUTY = 10  # a workspace whose walk took t CPU seconds is walked again after WALK_DUTY x t at the soonest
WALK_MIN_S = 0.01  # ... and never sooner than this after the last walk (writes seen by inotify)
WALK_IDLE_S = 2.0  # a workspace whose every folder inotify watches is walked by the ticks only this often
WATCH_MAX_DIRS = 256  # folders of one workspace watched by inotify; deeper ones are seen at the ticks only
SYNC_WALK_MAX_ENTRIES = 5000  # a workspace with more entries is walked on the watcher's thread, never on the loop

# -- MCP servers (their output is untrusted) -------------------------------------------------------
MCP_MAX_SERVERS = 32  # servers one --mcp_config may list
MCP_CONFIG_MAX_BYTES = 1 << 20  # size of the --mcp_config file
MCP_MAX_MESSAGE = 8 << 20  # bytes of one JSON-RPC line; a longer one ends the connection
MCP_MAX_BAD_LINES = 100  # unparsable stdout lines per connection before it is ended
MCP_MAX_TOOLS = 256  # tools kept from one server's listing
MCP_MAX_LIST_PAGES = 16  # tools/list pages read
MCP_MAX_DESCRIPTION = 1024  # characters of a tool description
MCP_MAX_SCHEMA_BYTES = 64 << 10  # JSON of one input schema
MCP_MAX_SCHEMA_DEPTH = 32  # nesting of one input schema
MCP_MAX_RESULT = 1 << 20  # bytes of JSON of one converted call result
MCP_STDERR_LOG_MAX = 4 << 20  # bytes of a server's stderr kept in its log file per kernel run
MCP_START_TIMEOUT = 30.0  # spawn + handshake + listing
MCP_PING_TIMEOUT = 5.0  # after a call timed out, a server that does not answer a ping is restarted
MCP_STOP_GRACE = 2.0  # after its stdin closes, before SIGKILL of its process group
MCP_DEFAULT_CALL_TIMEOUT = 30.0  # seconds a call waits when its caller names no timeout
# Restart intensity (Erlang/OTP style): a server whose connection ended (exit, crash, protocol violation,
# hang) is restarted after a backoff, at most MCP_RESTART_MAX times per MCP_RESTART_PERIOD_S; beyond that it
# stays down (its tools are withdrawn) until the kernel restarts.
MCP_RESTART_MAX = 3
MCP_RESTART_PERIOD_S = 60.0
MCP_RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # seconds before the 1st, 2nd, ... restart

# -- Tracing (kernel/trace): a span per call of every process, bounded per process --------------------
TRACE_SPANS_PER_PROC = 128  # spans kept per process, a ring: the oldest go first (counted as dropped)
TRACE_ENDED_KEPT = 64  # ended processes whose spans `trace -a` and the timeline can still show
TRACE_ARGS_MAX = 200  # characters of a span's arguments in brief
TRACE_TEXT_MAX = 160  # characters of a content preview or error message (--trace-content only)
TRACE_EVENTS_MAX = 16  # events (preempt, resume, kill) kept per span; more are counted, not kept
TRACE_EXPORT_QUEUE = 8192  # finished spans waiting for the exporter thread; beyond, dropped and counted
TRACE_SPAN_BYTES = 4096  # bytes of kernel memory one kept span takes at most (tests/unit/test_trace_record.py)
# So the tracer holds at most (max_agents + TRACE_ENDED_KEPT) x (TRACE_SPANS_PER_PROC + 1) x TRACE_SPAN_BYTES:
# 200 agents: 264 x 129 x 4 KiB = 133 MiB in the worst case (every span an LLM call with the longest arguments,
# preempted 16 times and confirmed); a plain syscall's span takes about 260 bytes (8.5 MiB for 200 agents). The
# exporter's queue adds at most TRACE_EXPORT_QUEUE x TRACE_SPAN_BYTES (32 MiB) with --trace-file/--otlp-endpoint.
