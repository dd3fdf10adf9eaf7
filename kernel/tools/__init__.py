"""The tool manager (kernel side of tools/): registry, argument schemas,
per-tool parallelism limits with queues, timeouts, worker threads and child
processes. Import ToolManager from kernel.tools.manager; this package stays
import-free so ``python -m kernel.tools.child`` starts light."""
