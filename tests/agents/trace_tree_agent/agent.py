"""TraceTreeAgent: spawns an EchoAgent child with the task, waits for it, returns the child's pid."""

from agent_apps.sdk import proc


class TraceTreeAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        child = proc.spawn("EchoAgent", task)
        proc.wait(child)
        return {"child": child}
