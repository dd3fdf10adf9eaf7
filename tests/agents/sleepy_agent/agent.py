import time

from agent_apps.sdk import proc


class SleepyAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        proc.info()  # be RUNNING in the table before blocking
        print(f"sleeping {task}", flush=True)
        time.sleep(float(task) if task.replace(".", "", 1).isdigit() else 3600)
        return "woke"
