"""GoTo clients: SCIM (users, groups), Admin API (account, licenses), OAuth tokens.

One ``Transport`` per API owns pacing, retries, the status -> error mapping and the dry-run seam.
"""

from .admin import GoToAdminClient
from .auth import OAuthTokenProvider, StaticTokenProvider, TokenProvider
from .errors import (
    AuthError,
    BadRequest,
    Conflict,
    DryRunBlocked,
    GoToError,
    LicenseLimitExceeded,
    NotFound,
    RateLimited,
    TransientError,
)
from .ratelimit import RateLimiter, TokenBucket
from .scim import GoToScimClient
from .transport import ClientStats, DryRunTransport, RetryPolicy, Transport, WouldBeRequest

__all__ = [
    "AuthError",
    "BadRequest",
    "ClientStats",
    "Conflict",
    "DryRunBlocked",
    "DryRunTransport",
    "GoToAdminClient",
    "GoToError",
    "GoToScimClient",
    "LicenseLimitExceeded",
    "NotFound",
    "OAuthTokenProvider",
    "RateLimited",
    "RateLimiter",
    "RetryPolicy",
    "StaticTokenProvider",
    "TokenBucket",
    "TokenProvider",
    "TransientError",
    "Transport",
    "WouldBeRequest",
]
