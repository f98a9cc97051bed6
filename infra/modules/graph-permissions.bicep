// Microsoft Graph application permissions for the app's managed identity, through the Microsoft
// Graph Bicep extension (alias in infra/bicepconfig.json; Bicep 0.36.1 or later). Whoever runs
// the deployment needs Privileged Role Administrator (or Global Administrator) in Entra ID; an
// app role assignment is itself the admin consent. Without that role, deploy with
// grantGraphPermissions=false and run `gotosync grant-permissions` as an admin (docs/deploy.md).

extension microsoftGraphV1

@description('Object (principal) id of the managed identity.')
param principalId string

@description('Microsoft Graph application permissions, by name.')
param permissions array

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for permission in permissions: {
    appRoleId: filter(microsoftGraph.appRoles, role => role.value == permission)[0].id
    principalId: principalId
    resourceId: microsoftGraph.id
  }
]

output granted array = permissions
