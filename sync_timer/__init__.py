"""Timer triggers (Blueprint): the sync cycle on %SYNC_SCHEDULE%."""

from sync_timer.functions import bp

__all__ = ["bp"]
