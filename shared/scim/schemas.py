"""The schema URNs and message URNs gotosync reads and writes, each spelled once.

RFC 7643 §3 (https://www.rfc-editor.org/rfc/rfc7643#section-3) names resources by schema URN;
RFC 7644 §3.5.2 (https://www.rfc-editor.org/rfc/rfc7644#section-3.5.2) names the PatchOp
message. GoTo's SCIM 1.x dialect adds its own core URN and a read-only ``getgo`` extension.
"""

from __future__ import annotations

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
CORE_1_URN = "urn:scim:schemas:core:1.0"  # GoTo's documented (SCIM 1.x) core schema
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GETGO_URN = "urn:scim:schemas:extension:getgo:1.0"  # GoTo's server-owned account data on a user
PATCHOP_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# A path qualified with one of these addresses a top-level attribute (RFC 7644 §3.10).
CORE_URNS = frozenset({CORE_1_URN, USER_URN, GROUP_URN})
_CORE_LOWER = frozenset(u.lower() for u in CORE_URNS)


def is_core_urn(urn: str) -> bool:
    """Whether ``urn`` names a core schema (compared case-insensitively, as URNs are)."""
    return urn.lower() in _CORE_LOWER


def is_extension(key: str) -> bool:
    """An extension object's key (``urn:…:User``) or a path inside one (``urn:…:User:department``);
    core-URN-qualified paths are not extensions."""
    lower = key.lower()
    if not lower.startswith("urn:"):
        return False
    return not any(lower == u or lower.startswith(u + ":") for u in _CORE_LOWER)
