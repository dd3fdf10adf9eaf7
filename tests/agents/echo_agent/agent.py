from agent_apps.sdk import log


class EchoAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        log("echo:", task)
        if task == "crash":
            raise RuntimeError("asked to crash")
        return task
