"""The access manager: privilege groups, ownership checks, confirmation of
irreversible actions, quotas and the audit log. See kernel/access/manager.py."""
