from agent_apps.sdk import log


class EchoAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        log("echo:", task)
        if task == "crash":
            raise RuntimeError("asked to crash")
        if task.startswith("crash-once:"):  # crash unless the marker file exists; create it
            marker = task.split(":", 1)[1]
            try:
                open(marker, "x").close()
            except FileExistsError:
                return "recovered"
            raise RuntimeError("first run crashes")
        return task
