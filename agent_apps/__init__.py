"""Agent apps and the SDK they use to reach the AIOS kernel (see agent_apps/sdk.py)."""
