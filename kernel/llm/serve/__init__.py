"""``python -m kernel.llm.serve``: the embedded model behind an OpenAI-compatible (and Gemini-shaped) HTTP
server, a program of its own for tests, benchmarks and demos; the kernel's engine never imports it.

server.py  the HTTP server, its routes and test hooks (``main``)
gen.py     token-by-token generation, one sequence at a time
gemini.py  the Gemini-shaped routes
"""
