"""The two choices of how gotosync speaks SCIM to its target, as the settings and the client
share them: which target it is (``ScimProfile``) and how an update is sent (``PatchStyle``)."""

from __future__ import annotations

import enum


class ScimProfile(enum.StrEnum):
    """SCIM_PROFILE: GoTo's API as documented and observed, or any strict SCIM 2.0 app."""

    GOTO = "goto"
    SCIM2 = "scim2"


class PatchStyle(enum.StrEnum):
    """GOTO_PATCH_STYLE: GoTo's merge PATCH, a SCIM 2.0 PatchOp, a full PUT, or ``auto`` (the
    first that the target accepts, in that order)."""

    AUTO = "auto"
    MERGE = "merge"
    PATCHOP = "patchop"
    PUT = "put"
