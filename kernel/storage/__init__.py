"""Storage manager: persistent, versioned per-agent records (SQLite, WAL) and the swap area."""

from kernel.storage.db import StorageDB
from kernel.storage.manager import StorageManager
from kernel.storage.swap import SwapArea

__all__ = ["StorageDB", "StorageManager", "SwapArea"]
