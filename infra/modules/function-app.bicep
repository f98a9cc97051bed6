// The Function app on the Flex Consumption plan (Linux, Python 3.11), running as the
// user-assigned identity. Flex Consumption takes the runtime from functionAppConfig, not from
// FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION, so those settings are not set.

@description('Function app name (globally unique: <name>.azurewebsites.net).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Storage account of AzureWebJobsStorage and of the deployment package.')
param storageAccountName string

@description('Blob container that holds the deployment package.')
param deploymentContainerName string

@description('gotosync\'s own app settings (every entry of shared.settings.SETTINGS).')
param appSettings object

@description('Most instances the app may scale out to.')
param maximumInstanceCount int

@description('Memory of one instance, MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Name of a function-level key to create on the graph_notifications function and to put in GRAPH_NOTIFICATION_URL (unless that is given). Empty: none. The function must exist, so this works from the second provisioning on (after the first code deployment).')
param webhookKeyName string = ''

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Identity-based connections for the Functions host and its triggers; AZURE_CLIENT_ID tells
// DefaultAzureCredential (gotosync's Graph, Table and Key Vault clients) which identity to use.
var platformSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // App Service Authentication (the console's sign-in, console-auth.bicep) proves gotosync's app
  // registration with this identity instead of a client secret, for this tenant's users only.
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
  WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in the app settings resolve with this identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  // The whole set of app settings: a later `azd provision` replaces settings edited in the portal.
  resource settings 'config' = {
    name: 'appsettings'
    properties: union(platformSettings, appSettings, webhookSettings)
    dependsOn: [
      webhookKey
    ]
  }
}

// The key Graph keeps in every subscription's notification URL opens the intake function only
// (a host key would open every function, /api/ops included). The platform generates its value.
var withWebhookKey = !empty(webhookKeyName)

resource notifyFunction 'Microsoft.Web/sites/functions@2024-04-01' existing = if (withWebhookKey) {
  parent: app
  name: 'graph_notifications'
}

resource webhookKey 'Microsoft.Web/sites/functions/keys@2024-04-01' = if (withWebhookKey) {
  parent: notifyFunction
  name: withWebhookKey ? webhookKeyName : 'unused'
}

// Lifecycle notifications use the same URL (GRAPH_LIFECYCLE_URL empty): the intake tells the
// two kinds apart per item.
var deriveNotificationUrl = withWebhookKey && empty(appSettings.GRAPH_NOTIFICATION_URL)
var webhookSettings = deriveNotificationUrl ? { GRAPH_NOTIFICATION_URL: webhookUrl } : {}
var webhookUrl = deriveNotificationUrl ? 'https://${app.properties.defaultHostName}/api/graph/notify?code=${listKeys(notifyFunction.id, '2024-04-01')[webhookKeyName]}' : ''

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
