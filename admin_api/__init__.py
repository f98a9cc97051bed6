"""HTTP admin endpoints (Blueprint): on demand, dry run, test connection, on/off, restart,
allow deletes, status and the provisioning logs, under /api/ops/."""

from admin_api.functions import bp

__all__ = ["bp"]
