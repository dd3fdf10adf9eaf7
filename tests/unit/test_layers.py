"""Which process's code imports which: the map docs/architecture.md's "Layout" describes, checked from the source (no model).

- The kernel never imports the front (aios_shell/), nor the agents' side of confinement (agent_apps/confine/:
  its probe runs that side's check as a child).
- The protocol (kernel/protocol/) imports nothing else of the project.
- An agent reads only the files its sandbox binds (kernel/confine/sandbox.py SDK_FILES): every kernel module
  agent_apps/ imports, with everything those import in turn, must be one of them, or the agent fails only
  when it runs confined; of the kernel's package that is the protocol alone.
- The front imports no kernel module that loads torch or the model: only the protocol and a few light ones
  (named in the test).
"""

from __future__ import annotations

import ast
from pathlib import Path

from kernel.confine.sandbox import SDK_FILES

ROOT = Path(__file__).resolve().parents[2]


def _nodes(tree: ast.AST, top_only: bool):
    """Every node of ``tree``; with ``top_only``, not those inside a function (run only when it is called)."""
    for node in ast.iter_child_nodes(tree):
        yield node
        if not (top_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
            yield from _nodes(node, top_only)


def _imports(path: Path, top_only: bool = False) -> set[str]:
    """The modules ``path`` imports, dotted (``from a import b`` gives a.b too); with ``top_only``, only
    those its import runs (a kernel module's function may import what only the kernel process needs)."""
    found = set()
    for node in _nodes(ast.parse(path.read_text()), top_only):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _file(module: str) -> Path | None:
    """The project file of a dotted module, or None (a name, not a module, or outside the project)."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _needs(module: str) -> set[Path]:
    """The files importing ``module`` loads: its own and each parent package's __init__.py."""
    parts = module.split(".")
    return {f for i in range(1, len(parts) + 1) if (f := _file(".".join(parts[:i]))) is not None}


def _closure(files: set[Path], prefix: str) -> set[Path]:
    """Every file under ``prefix`` that running ``files`` loads (any import in them, then what the import of
    each loaded file runs, transitively)."""
    seen: set[Path] = set()
    todo = [(f, False) for f in files]
    while todo:
        path, top_only = todo.pop()
        for module in _imports(path, top_only):
            if module.split(".")[0] != prefix:
                continue
            for f in _needs(module) - seen:
                seen.add(f)
                todo.append((f, True))
    return seen


def test_the_kernel_never_imports_the_front_or_the_agents_confinement():
    wrong = [f"{p.relative_to(ROOT)}: {m}" for p in ROOT.glob("kernel/**/*.py") for m in _imports(p)
             if m.split(".")[0] in ("aios_shell", "main", "simulator") or m.startswith("agent_apps.confine")]
    assert wrong == []


def test_the_protocol_imports_nothing_else_of_the_project():
    project = ("kernel", "agent_apps", "aios_shell", "tools")
    wrong = [f"{p.relative_to(ROOT)}: {m}" for p in ROOT.glob("kernel/protocol/*.py") for m in _imports(p)
             if m.split(".")[0] in project and not m.startswith("kernel.protocol")]
    assert wrong == []


def test_an_agent_imports_only_the_files_its_sandbox_binds():
    agent_side = set(ROOT.glob("agent_apps/*.py")) | set(ROOT.glob("agent_apps/confine/*.py")) - \
        {ROOT / "agent_apps/confine/check.py"}  # check.py: run by the kernel's probe, outside any sandbox
    needed = {str(p.relative_to(ROOT)) for p in _closure(agent_side, "kernel")}
    assert "kernel/protocol/messages.py" in needed and "kernel/protocol/channel.py" in needed  # the test sees
    assert {f for f in needed if not f.startswith("kernel/protocol/")} == {"kernel/__init__.py"}  # the protocol only
    own = {str(p.relative_to(ROOT)) for p in _closure(agent_side, "agent_apps")}
    unbound = (needed | own) - set(SDK_FILES)
    assert unbound == set(), sorted(unbound)


def test_the_front_imports_only_light_kernel_modules():
    """The engine, the model and the kernel's loop stay out of the front (they load torch or transformers)."""
    front = set(ROOT.glob("aios_shell/**/*.py")) | {ROOT / "main.py", ROOT / "simulator.py"}
    loaded = {str(p.relative_to(ROOT)) for p in _closure(front, "kernel")}
    heavy = {"kernel/kernel.py", "kernel/llm/engine.py", "kernel/llm/model.py", "kernel/hf.py",
             "kernel/memory/embed.py"}
    assert "kernel/boot.py" in loaded and "kernel/protocol/messages.py" in loaded
    assert loaded & heavy == set()
    # What the front may load of the kernel's package: the protocol (messages, control ops and their schemas),
    # the config records (the front makes its flags from them: aios_shell/flags.py), the model catalog and the
    # MCP config file's reader (aios_shell/preflight.py: a bad name or file is one line before a kernel starts),
    # the agent-app catalog (kernel/apps.py: aios agents, aios run's check and main.py's demo list, before a
    # kernel runs; with one, the shell asks it: the apps op), the log file names, the limits, and boot.py (the
    # kernel process's entry, started from the front). Not the control handlers, the syscall table or the
    # process table: the daemon checks a client's frames with kernel/protocol/control.py.
    allowed = {"kernel/__init__.py", "kernel/boot.py", "kernel/config.py", "kernel/apps.py", "kernel/llm/__init__.py",
               "kernel/llm/catalog.py", "kernel/tools/__init__.py", "kernel/tools/mcp/__init__.py",
               "kernel/tools/mcp/config.py", "kernel/logs.py", "kernel/param.py"}
    assert {f for f in loaded if not f.startswith("kernel/protocol/")} <= allowed, sorted(loaded - allowed)
