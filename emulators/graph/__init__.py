"""Local Microsoft Graph emulator (users, groups, app role assignments, delta, subscriptions,
$batch) faithful to docs/reference/microsoft-graph.md. See docs/emulator-graph.md."""

from .config import GraphConfig, fast_test_config
from .emulator import GraphEmulator
from .errors import GraphError
from .model import ANY_ROLE, DEFAULT_ACCESS_ROLE_ID

__all__ = ["ANY_ROLE", "DEFAULT_ACCESS_ROLE_ID", "GraphConfig", "GraphEmulator", "GraphError", "fast_test_config"]
