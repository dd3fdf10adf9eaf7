import os
import time

from agent_apps.sdk import proc


class EndpointInfoAgent:
    """Shows what a class agent's code sees of its endpoint, then waits (tests/security/test_endpoint.py)."""

    def __init__(self, app):
        self.app = app

    def run(self, task):
        proc.info()
        print("endpoint", os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"], flush=True)
        time.sleep(float(task))
        return "woke"
