"""The provisioning console (Blueprint): a web page for status, progress, logs and the admin
actions, served by the Function app itself from console/static/, with its API at
/api/console/ops/<operation> for signed-in admins (docs/console.md)."""

from console.functions import bp

__all__ = ["bp"]
