"""MCP tools: Model Context Protocol servers hosted by the tool manager.

config.py   the --mcp_config file (Claude Desktop's "mcpServers" format) and every MCP limit
launch.py   the launcher each server runs under (dies with the kernel, takes its group along)
transport.py  stdio transport with a cap on message size (the SDK's reads lines unbounded)
tool.py     one remote tool as a kernel Tool: name, schema checks, side effect, result conversion
server.py   one server: its connection through the SDK's Client, states, restarts, hang checks
hub.py      the "mcp" thread (the official SDK's asyncio client): every server, and the calls
service.py  the kernel-loop side: registry updates, holding early calls until servers start

Light on import: the SDK (about 0.8 s to import) is loaded by service.py at kernel start, and only
when --mcp_config is given; the front and agents never import it.
"""
