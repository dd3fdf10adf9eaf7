"""An agent app's profile as it crosses from the kernel to the agent: the kernel reads the app's
``config.json`` (kernel/apps.py, its catalog) and sends this record in the agent's boot frame; the
agent runtime (agent_apps/runtime.py) loads the app's class, or runs its command, from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_ARGV = 64  # entries of a profile's command


@dataclass(frozen=True)
class AgentApp:
    name: str
    module: str  # module name the class is loaded as, e.g. agent_apps.math_agent.agent
    path: str  # the agent.py file (config.json for a command agent)
    description: str
    steps: list = field(default_factory=list)
    tools: list = field(default_factory=list)
    config: dict = field(default_factory=dict)  # the whole config.json


def validate_command(command) -> list[str]:
    """A profile's ``command`` (agent_apps/command.py runs it): a non-empty list of strings, no shell, no NUL.
    The kernel refuses an app with a bad one when it reads the catalog; the runtime checks it again."""
    if (not isinstance(command, list) or not command or len(command) > MAX_ARGV
            or not all(isinstance(a, str) and a and "\0" not in a and len(a) <= 4096 for a in command)):
        raise ValueError('"command" must be a list of 1 to 64 non-empty strings, like ["python", "agent.py"]')
    return list(command)
