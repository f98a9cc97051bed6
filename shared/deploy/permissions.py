"""`gotosync grant-permissions`: gives the Function app's managed identity its Microsoft Graph
application permissions (docs/reference/microsoft-graph.md#permissions) — the fallback for tenants where the
Bicep Graph extension (infra/modules/graph-permissions.bicep) cannot be used.

For each permission: ``POST /servicePrincipals/{identity}/appRoleAssignments`` with
``{principalId: identity, resourceId: <Microsoft Graph's service principal>, appRoleId: <role>}``.
Application permissions granted this way need no separate admin consent: the assignment *is*
the consent. The signed-in admin needs Privileged Role Administrator (or Global Administrator).
Existing assignments are left alone, so running it twice is harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.errors import GotosyncError

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

# What gotosync calls, least-privileged (docs/reference/microsoft-graph.md#permissions):
# Application.Read.All - the enterprise app's appRoles and appRoleAssignedTo
# User.Read.All        - users, users/delta, and subscriptions on /users
# GroupMember.Read.All - members of assigned groups, groups/delta
# Group.Read.All       - subscriptions on /groups/{id}/members (GroupMember.Read.All is UNCONFIRMED there)
DEFAULT_PERMISSIONS: tuple[str, ...] = (
    "Application.Read.All",
    "User.Read.All",
    "GroupMember.Read.All",
    "Group.Read.All",
)


class PermissionGrantError(GotosyncError):
    """The grant cannot be made as asked (unknown permission, no Microsoft Graph principal)."""

    code = "BadRequest"
    exit_code = 2
    http_status = 400


class GrantRefused(PermissionGrantError):
    """Microsoft Graph refused the signed-in admin the grant (401/403)."""

    code = "InsufficientRights"
    exit_code = 5
    http_status = 502
    fix = "sign in (az login) as a Privileged Role Administrator or Global Administrator"


@dataclass(frozen=True)
class Grant:
    permission: str
    app_role_id: str
    status: str  # "granted", "already granted", "would grant" (dry run)


def build_assignment(principal_id: str, resource_id: str, app_role_id: str) -> Any:
    """The body of ``POST /servicePrincipals/{principal_id}/appRoleAssignments``."""
    from msgraph.generated.models.app_role_assignment import AppRoleAssignment

    return AppRoleAssignment(
        principal_id=uuid.UUID(principal_id),
        resource_id=uuid.UUID(resource_id),
        app_role_id=uuid.UUID(app_role_id),
    )


def application_roles(graph_sp: Any) -> dict[str, str]:
    """Microsoft Graph's application permissions by name (``User.Read.All`` -> app role id)."""
    roles: dict[str, str] = {}
    for role in graph_sp.app_roles or []:
        if role.value and "Application" in (role.allowed_member_types or []) and role.is_enabled is not False:
            roles[role.value] = str(role.id)
    return roles


async def grant_permissions(
    client: Any,
    principal_id: str,
    permissions: Iterable[str] = DEFAULT_PERMISSIONS,
    *,
    dry_run: bool = False,
) -> list[Grant]:
    """Grants each permission to ``principal_id`` (the managed identity's object id)."""
    try:
        uuid.UUID(principal_id)
    except ValueError:
        raise PermissionGrantError(
            f"--principal-id must be the managed identity's object (principal) id, a GUID; got {principal_id!r}"
        ) from None
    try:
        return await _grant(client, principal_id, list(dict.fromkeys(permissions)), dry_run)
    except PermissionGrantError:
        raise
    except Exception as exc:
        status = getattr(exc, "response_status_code", None)
        if status in (401, 403):
            raise GrantRefused(f"Microsoft Graph refused the grant (HTTP {status})") from exc
        raise


async def _grant(client: Any, principal_id: str, wanted: list[str], dry_run: bool) -> list[Grant]:
    graph_sp = await client.service_principals_with_app_id(MICROSOFT_GRAPH_APP_ID).get()
    if graph_sp is None or not graph_sp.id:
        raise PermissionGrantError("Microsoft Graph's service principal was not found in this tenant")
    roles = application_roles(graph_sp)
    unknown = [p for p in wanted if p not in roles]
    if unknown:
        raise PermissionGrantError(f"not Microsoft Graph application permissions: {', '.join(unknown)}")

    assignments = client.service_principals.by_service_principal_id(principal_id).app_role_assignments
    have: set[str] = set()
    page = await assignments.get()
    while page is not None:
        have.update(str(a.app_role_id) for a in page.value or [] if str(a.resource_id) == str(graph_sp.id))
        page = await assignments.with_url(page.odata_next_link).get() if page.odata_next_link else None

    grants: list[Grant] = []
    for permission in wanted:
        role_id = roles[permission]
        if role_id in have:
            grants.append(Grant(permission, role_id, "already granted"))
        elif dry_run:
            grants.append(Grant(permission, role_id, "would grant"))
        else:
            await assignments.post(build_assignment(principal_id, str(graph_sp.id), role_id))
            grants.append(Grant(permission, role_id, "granted"))
    return grants
