"""Local GoTo stand-in (docs/reference/goto-api.md): SCIM / Identity API, a minimal
Admin API with a seat-limited license pool, GoTo's OAuth endpoints and a control surface, with one
switch per UNCONFIRMED behaviour (docs/reference/goto-api.md#unconfirmed-behaviours).
See docs/emulator-goto.md.

    from emulators.goto import GoToEmulator, GoToSwitches
    with GoToEmulator(GoToSwitches(dialect="scim2")) as goto:
        headers = goto.auth_headers()          # a valid admin access token
        httpx.get(goto.scim_url + "/Users", headers=headers)
"""

from .emulator import GoToEmulator
from .model import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PAT,
    GoToError,
    GoToModel,
    GoToSwitches,
    OAuthError,
    switch_info,
)

__all__ = [
    "DEFAULT_ADMIN_EMAIL",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PAT",
    "GoToEmulator",
    "GoToError",
    "GoToModel",
    "GoToSwitches",
    "OAuthError",
    "switch_info",
]
