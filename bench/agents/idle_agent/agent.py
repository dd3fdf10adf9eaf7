import threading

from agent_apps.sdk import proc


class IdleAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        proc.info()
        threading.Event().wait()
