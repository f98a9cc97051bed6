"""HTTP intake for Microsoft Graph change notifications and the queue worker (Blueprint)."""

from graph_webhook.functions import bp

__all__ = ["bp"]
