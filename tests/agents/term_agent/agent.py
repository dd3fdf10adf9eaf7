"""Tries to take over the user's terminal: escape sequences through print, stderr, the raw file
descriptors 1 and 2 (below Python), and in its result; a carriage return to overwrite its own
``[TermAgent pid]`` prefix with a forged one."""

import os
import sys

ESC = "\x1b"
EVIL = f"{ESC}[2J{ESC}]0;pwned\x07{ESC}[1;31merror: forged"


class TermAgent:
    def __init__(self, app):
        self.app = app

    def run(self, task):
        print(f"{EVIL} via print")
        print(f"\r[OtherAgent 1] forged prefix", flush=True)
        print(f"{EVIL} via stderr", file=sys.stderr, flush=True)
        os.write(1, f"RAWFD1 {EVIL}\n".encode())
        os.write(2, f"RAWFD2 {EVIL}\n".encode())
        return f"{EVIL} in the result"
