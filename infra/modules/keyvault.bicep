// Key Vault (Azure RBAC, no access policies) for the GoTo OAuth secrets: goto-client-secret,
// goto-refresh-token (rewritten by the app on every rotation) and, optionally, goto-pat.
// The secrets are written by `gotosync authorize`, never by this template.

@description('Key Vault name (3-24 characters, globally unique).')
param name string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Purge protection: a deleted vault cannot be purged before its retention ends. It cannot be turned off again.')
param purgeProtection bool

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // ARM refuses an explicit false here: leave it out unless it is turned on.
    enablePurgeProtection: purgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
