// gotosync in your subscription: a Function app (Flex Consumption, Python 3.11) running as a
// user-assigned managed identity, its storage (no shared keys), Key Vault for the GoTo
// secrets, Application Insights, and Microsoft Graph application permissions.
// `azd up` deploys it (azure.yaml); docs/deploy.md walks through the whole setup.

targetScope = 'subscription'

metadata description = 'gotosync: provisioning of Microsoft Entra ID users and groups into GoTo.'

// --- deployment -------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; resource names and the azd-env-name tag derive from it.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person deploying (azd fills it in). Gets Key Vault Secrets Officer and Storage Table Data Contributor for `gotosync authorize` / `gotosync status`. Empty: none.')
param principalId string = ''

@description('Kind of principalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Grant the Graph application permissions with the Microsoft Graph Bicep extension (the deploying user must be a Privileged Role Administrator). false: run `gotosync grant-permissions` instead.')
param grantGraphPermissions bool = true

@description('Microsoft Graph application permissions of the app\'s identity (docs/reference/microsoft-graph.md#permissions).')
param graphPermissions array = [
  'Application.Read.All'
  'User.Read.All'
  'GroupMember.Read.All'
  'Group.Read.All'
]

@description('Sign-in to the provisioning console: gotosync\'s own app registration with the Gotosync.Admin app role, and App Service Authentication with Entra ID on the app (the deploying user needs Application Developer, or may register apps, and must be allowed to assign app roles). false: the console stays closed.')
param consoleSignIn bool = true

@description('Object ids of users (or groups, Entra ID P1) who get the console\'s Gotosync.Admin role; the deploying user gets it too.')
param consoleAdmins array = []

@description('Most instances the app scales out to (one cycle runs at a time; GoTo allows 10 requests/s, shared by every instance through the budget in Table Storage; GOTO_INSTANCES, the divisor of the pace an instance falls back to without storage, is this).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of one instance, MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days Log Analytics keeps telemetry.')
@minValue(30)
@maxValue(730)
param workspaceRetentionInDays int = 30

@description('Key Vault purge protection (cannot be turned off again once on).')
param keyVaultPurgeProtection bool = false

// --- gotosync app settings: one parameter per setting, defaults as in shared/settings.py ----
// (docs/configuration.md describes each; secrets are Key Vault references, never parameters.)

@description('GOTOSYNC_TABLE_PREFIX: prefix of every table gotosync creates.')
param tablePrefix string = 'gotosync'

@description('ENTRA_SERVICE_PRINCIPAL_ID: object id of the GoToMeeting enterprise app\'s service principal.')
param entraServicePrincipalId string = ''

@description('GRAPH_BASE_URL: Microsoft Graph base URL.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('GOTO_SCIM_URL: GoTo SCIM (Identity API) base URL.')
param gotoScimUrl string = 'https://api.getgo.com/identity/v1'

@description('GOTO_ADMIN_URL: GoTo Admin API base URL.')
param gotoAdminUrl string = 'https://api.getgo.com/admin/rest/v1'

@description('GOTO_TOKEN_URL: GoTo OAuth token endpoint.')
param gotoTokenUrl string = 'https://authentication.logmeininc.com/oauth/token'

@description('GOTO_CLIENT_ID: GoTo OAuth client id (its secret goes to Key Vault as goto-client-secret).')
param gotoClientId string = ''

@description('GOTO_PAT: true to use a personal access token from Key Vault (secret goto-pat) instead of a refresh token.')
param useGotoPat bool = false

@description('GOTO_ACCESS_TOKEN: true to send a fixed bearer token from Key Vault (secret goto-access-token), such as a SCIM 2.0 app\'s secret token, instead of GoTo\'s OAuth.')
param useStaticBearer bool = false

@description('SCIM_PROFILE: the SCIM target, goto (GoTo) or scim2 (any SCIM 2.0 app, strict RFC 7643/7644).')
@allowed([
  'goto'
  'scim2'
])
param scimProfile string = 'goto'

@description('GOTO_RATE_LIMIT: requests per second to each GoTo API.')
param gotoRateLimit string = '10'

@description('GOTO_MAX_CONCURRENCY: GoTo requests in flight at once.')
param gotoMaxConcurrency string = '4'

@description('GOTO_SHARED_BUDGET: share each GoTo API\'s request budget with every instance through Table Storage.')
@allowed([
  'true'
  'false'
])
param gotoSharedBudget string = 'true'

@description('GOTO_BUDGET_BATCH: slots of the shared GoTo budget booked per storage round trip at most.')
param gotoBudgetBatch string = '4'

@description('GOTO_PATCH_STYLE: how updates are sent to GoTo.')
@allowed([
  'auto'
  'merge'
  'patchop'
  'put'
])
param gotoPatchStyle string = 'auto'

@description('GOTO_SEND_ACTIVE: send the SCIM active attribute.')
@allowed([
  'true'
  'false'
])
param gotoSendActive string = 'true'

@description('SYNC_SCHEDULE: NCRONTAB schedule of the sync cycle.')
param syncSchedule string = '0 */40 * * * *'

@description('DRIFT_SWEEP_SCHEDULE: NCRONTAB schedule of the drift sweep (GoTo users edited by hand are put back).')
param driftSweepSchedule string = '0 0 2 * * *'

@description('DELETION_THRESHOLD: disables + deletes one cycle may do before they are staged; 0 = no limit.')
param deletionThreshold string = '500'

@description('DELETION_THRESHOLD_PERCENT: disables + deletes one run may do as a % of the managed users (counted above 5); 0 = off.')
param deletionThresholdPercent string = '10'

@description('DELETION_CONFIRMATION_SECONDS: a user absent from Graph and its recycle bin is deleted only when a read this long after agrees.')
param deletionConfirmationSeconds string = '600'

@description('CYCLE_LEASE_SECONDS: time-to-live of the cycle lease (renewed every third); a dead holder is taken over after it.')
param cycleLeaseSeconds string = '60'

@description('CYCLE_TIME_BUDGET_SECONDS: how long one invocation works on a cycle before it hands the cycle on (below functionTimeout).')
param cycleTimeBudgetSeconds string = '1500'

@description('CONTINUATION_QUEUE: Storage queue on which a cycle that ran out of its time budget hands itself on.')
param continuationQueue string = 'gotosync-continue'

@description('DEFAULT_ACCESS_ONLY: users whose only role is Default Access.')
@allowed([
  'skip'
  'provision'
])
param defaultAccessOnly string = 'skip'

@description('SKIP_OUT_OF_SCOPE_DELETIONS: leave out-of-scope GoTo users alone.')
@allowed([
  'true'
  'false'
])
param skipOutOfScopeDeletions string = 'false'

@description('HARD_DELETE_ACTION: on hard delete in Entra.')
@allowed([
  'delete'
  'disable'
])
param hardDeleteAction string = 'delete'

@description('TRANSITIVE_MEMBERS: members of nested groups are in scope too.')
@allowed([
  'true'
  'false'
])
param transitiveMembers string = 'false'

@description('PROVISION_GROUPS: assigned Entra groups become GoTo groups with their provisioned members.')
@allowed([
  'true'
  'false'
])
param provisionGroups string = 'false'

@description('GOTO_VERIFIED_DOMAINS: comma-separated verified GoTo domains.')
param gotoVerifiedDomains string = ''

@description('CYCLE_CONCURRENCY: objects processed at once within a cycle.')
param cycleConcurrency string = '8'

@description('GRAPH_NOTIFICATION_URL: public https URL of the graph_webhook intake, with its function key. Empty with graphWebhook: derived from the function-level key this template creates.')
param graphNotificationUrl string = ''

@description('Real-time notifications: create a function-level key on the graph_notifications intake and derive GRAPH_NOTIFICATION_URL from it. Needs the code deployed first: set it after the first `azd up`, then `azd provision`.')
param graphWebhook bool = false

@description('GRAPH_LIFECYCLE_URL: URL for Graph lifecycle notifications (empty: the notification URL).')
param graphLifecycleUrl string = ''

@description('NOTIFICATION_QUEUE: queue between the webhook intake and its worker.')
@minLength(3)
@maxLength(63)
param notificationQueue string = 'gotosync-notifications'

@description('ASSIGNMENT_WATCH_SCHEDULE: NCRONTAB schedule of the app-role assignment watch.')
param assignmentWatchSchedule string = '0 */2 * * * *'

@description('SUBSCRIPTION_KEEPER_SCHEDULE: NCRONTAB schedule of the Graph subscription keeper.')
param subscriptionKeeperSchedule string = '0 15 * * * *'

@description('SUBSCRIPTION_GROUP_LIMIT: per-group member subscriptions before one on /groups.')
param subscriptionGroupLimit string = '90'

@description('LOG_RETENTION_DAYS: days provisioning logs are kept.')
param logRetentionDays string = '30'

@description('RETENTION_SCHEDULE: NCRONTAB schedule of the log retention purge.')
param retentionSchedule string = '0 30 3 * * *'

@description('MAPPING_FILE: path of the attribute-mapping file in the app package (empty: the built-in map).')
param mappingFile string = ''

@description('ROLE_LICENSES: app role value -> GoTo license keys or product codes, as JSON.')
param roleLicenses string = ''

// --- names ------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'gotosync'
}
var names = {
  resourceGroup: 'rg-${environmentName}'
  identity: 'id-gotosync-${resourceToken}'
  storage: 'st${resourceToken}'
  keyVault: 'kv-${resourceToken}'
  logAnalytics: 'log-gotosync-${resourceToken}'
  applicationInsights: 'appi-gotosync-${resourceToken}'
  plan: 'plan-gotosync-${resourceToken}'
  functionApp: 'func-gotosync-${resourceToken}'
  consoleRegistration: 'gotosync-console-${resourceToken}'
  deploymentContainer: 'app-package'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: names.deploymentContainer
    notificationQueueName: notificationQueue
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    retentionInDays: workspaceRetentionInDays
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    purgeProtection: keyVaultPurgeProtection
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: vault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module graphPermissionGrants 'modules/graph-permissions.bicep' = if (grantGraphPermissions) {
  name: 'graph-permissions'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    permissions: graphPermissions
  }
}

// Key Vault references resolve with the app's identity. App Service caches them (up to a day),
// so the app reads the refresh token straight from the vault too (KEY_VAULT_URL) and writes
// every rotated one back there.
var secretRef = 'VaultName=${names.keyVault};SecretName='

// Every setting in shared/settings.py (tests/deploy/test_app_settings.py keeps them in step).
var gotosyncSettings = {
  GOTOSYNC_STORAGE: '' // no connection strings in Azure: the tables are reached with the identity
  GOTOSYNC_TABLE_ENDPOINT: storage.outputs.tableEndpoint
  GOTOSYNC_TABLE_PREFIX: tablePrefix
  ENTRA_TENANT_ID: tenant().tenantId
  ENTRA_SERVICE_PRINCIPAL_ID: entraServicePrincipalId
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_STATIC_TOKEN: '' // local emulator runs only
  GOTO_SCIM_URL: gotoScimUrl
  GOTO_ADMIN_URL: gotoAdminUrl
  GOTO_TOKEN_URL: gotoTokenUrl
  GOTO_CLIENT_ID: gotoClientId
  GOTO_CLIENT_SECRET: '@Microsoft.KeyVault(${secretRef}goto-client-secret)'
  GOTO_REFRESH_TOKEN: '@Microsoft.KeyVault(${secretRef}goto-refresh-token)'
  GOTO_PAT: useGotoPat ? '@Microsoft.KeyVault(${secretRef}goto-pat)' : ''
  GOTO_ACCESS_TOKEN: useStaticBearer ? '@Microsoft.KeyVault(${secretRef}goto-access-token)' : ''
  GOTO_RATE_LIMIT: gotoRateLimit
  GOTO_MAX_CONCURRENCY: gotoMaxConcurrency
  GOTO_SHARED_BUDGET: gotoSharedBudget
  GOTO_BUDGET_BATCH: gotoBudgetBatch
  GOTO_INSTANCES: string(maximumInstanceCount)
  GOTO_PATCH_STYLE: gotoPatchStyle
  GOTO_SEND_ACTIVE: gotoSendActive
  SYNC_SCHEDULE: syncSchedule
  DRIFT_SWEEP_SCHEDULE: driftSweepSchedule
  DELETION_THRESHOLD: deletionThreshold
  DELETION_THRESHOLD_PERCENT: deletionThresholdPercent
  DELETION_CONFIRMATION_SECONDS: deletionConfirmationSeconds
  CYCLE_LEASE_SECONDS: cycleLeaseSeconds
  CYCLE_TIME_BUDGET_SECONDS: cycleTimeBudgetSeconds
  CONTINUATION_QUEUE: continuationQueue
  DEFAULT_ACCESS_ONLY: defaultAccessOnly
  SKIP_OUT_OF_SCOPE_DELETIONS: skipOutOfScopeDeletions
  HARD_DELETE_ACTION: hardDeleteAction
  TRANSITIVE_MEMBERS: transitiveMembers
  PROVISION_GROUPS: provisionGroups
  GOTO_VERIFIED_DOMAINS: gotoVerifiedDomains
  CYCLE_CONCURRENCY: cycleConcurrency
  GRAPH_NOTIFICATION_URL: graphNotificationUrl
  GRAPH_LIFECYCLE_URL: graphLifecycleUrl
  NOTIFICATION_QUEUE: notificationQueue
  ASSIGNMENT_WATCH_SCHEDULE: assignmentWatchSchedule
  SUBSCRIPTION_KEEPER_SCHEDULE: subscriptionKeeperSchedule
  SUBSCRIPTION_GROUP_LIMIT: subscriptionGroupLimit
  LOG_RETENTION_DAYS: logRetentionDays
  RETENTION_SCHEDULE: retentionSchedule
  MAPPING_FILE: mappingFile
  ROLE_LICENSES: roleLicenses
  KEY_VAULT_URL: vault.outputs.uri
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  GOTO_REFRESH_TOKEN_FILE: '' // local runs only: in Azure the token lives in Key Vault
  SCIM_PROFILE: scimProfile
}

module app 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: names.deploymentContainer
    appSettings: gotosyncSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    webhookKeyName: graphWebhook ? 'graph-webhook' : ''
  }
  // The app must not start before its identity may read its storage and secrets.
  dependsOn: [
    rbac
  ]
}

// The provisioning console's sign-in (docs/deploy.md, "The console"). After the app: the sign-in
// redirect URI is on its host name.
var consoleAdminIds = union(consoleAdmins, principalType == 'User' && !empty(principalId) ? [principalId] : [])

module consoleAuth 'modules/console-auth.bicep' = if (consoleSignIn) {
  name: 'console-auth'
  scope: rg
  params: {
    appName: app.outputs.name
    appHostName: app.outputs.defaultHostName
    registrationName: names.consoleRegistration
    displayName: 'gotosync console (${environmentName})'
    identityPrincipalId: identity.outputs.principalId
    adminPrincipalIds: consoleAdminIds
  }
}

// --- outputs (azd stores them in .azure/<env>/.env; `azd env get-values` prints them) ---------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${app.outputs.defaultHostName}'
output GOTOSYNC_CONSOLE_URL string = consoleSignIn ? 'https://${app.outputs.defaultHostName}/api/console' : ''
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output GRAPH_PERMISSIONS_GRANTED_BY_BICEP bool = grantGraphPermissions
// The same names as the app settings, so that the gotosync CLI on a workstation can use them.
output KEY_VAULT_URL string = vault.outputs.uri
output GOTOSYNC_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output GOTOSYNC_TABLE_PREFIX string = tablePrefix
output ENTRA_TENANT_ID string = tenant().tenantId
output ENTRA_SERVICE_PRINCIPAL_ID string = entraServicePrincipalId
output GOTO_CLIENT_ID string = gotoClientId
output GOTO_TOKEN_URL string = gotoTokenUrl
