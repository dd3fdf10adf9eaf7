"""MCP tools: Model Context Protocol servers hosted by the tool manager.

config.py   the --mcp_config file (Claude Desktop's "mcpServers" format) and every MCP limit
launch.py   the launcher each server runs under (dies with the kernel, takes its group along)
transport.py  stdio transport with a cap on message size (the SDK's reads lines unbounded)
tool.py     one remote tool as a kernel Tool: name, schema checks, side effect, result conversion
hub.py      the "mcp" thread: the official SDK's asyncio client, supervision, calls

Light on import: the SDK is imported by hub.py on its own thread, only when a config names servers.
"""
