// Sign-in to the provisioning console (docs/console.md, docs/deploy.md "The console"): gotosync's
// own app registration with its admin app role (Gotosync.Admin), its enterprise application
// (assignment required: only users or groups given the role can sign in at all), and App Service
// Authentication on the Function app with Microsoft Entra ID.
//
// No client secret exists: App Service Authentication proves the registration's identity with the
// app's user-assigned managed identity, trusted through a federated identity credential
// (clientSecretSettingName OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID; the app setting of that name
// holds the identity's client id, set in function-app.bicep).
// https://learn.microsoft.com/en-us/azure/app-service/configure-authentication-provider-aad
//
// Unauthenticated requests are let through to the app (AllowAnonymous): the Graph webhook and the
// function-key endpoints must keep working, and the console's own code refuses every request
// whose principal lacks Gotosync.Admin (shared/ops/access.py). The token store is off: nothing,
// not even /.auth/me, hands a token to the page.

extension microsoftGraphV1

@description('Name of the Function app.')
param appName string

@description('Default host name of the Function app (the sign-in redirect URI is on it).')
param appHostName string

@description('Unique name of the app registration in the tenant.')
param registrationName string

@description('Display name of the app registration and its enterprise application.')
param displayName string

@description('Object (principal) id of the app\'s user-assigned identity: the federated credential\'s subject.')
param identityPrincipalId string

@description('Object ids of the users (or groups) who get the Gotosync.Admin role.')
param adminPrincipalIds array

@description('Hours a console session lasts before the admin signs in again.')
@minValue(1)
@maxValue(24)
param sessionHours int = 8

var adminRoleValue = 'Gotosync.Admin'
var adminRoleId = guid(resourceGroup().id, registrationName, adminRoleValue)
var issuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
var userReadScopeId = 'e1fe6dd8-ba31-4d61-89e7-88639da4683d' // Microsoft Graph delegated User.Read: sign-in

resource registration 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: registrationName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  web: {
    redirectUris: [
      'https://${appHostName}/.auth/login/aad/callback'
    ]
    implicitGrantSettings: {
      enableIdTokenIssuance: true // App Service Authentication signs in with the hybrid flow (code id_token)
      enableAccessTokenIssuance: false
    }
  }
  appRoles: [
    {
      id: adminRoleId
      value: adminRoleValue
      displayName: 'gotosync admin'
      description: 'Uses the gotosync provisioning console: status, logs, provision on demand, start, stop, restart, allow deletes.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
  ]
  requiredResourceAccess: [
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        {
          id: userReadScopeId
          type: 'Scope'
        }
      ]
    }
  ]
}

// Graph child resources are addressed as '<parent uniqueName>/<name>'.
resource signInCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${registration.uniqueName}/app-service-authentication'
  description: 'App Service Authentication of the gotosync Function app signs in as this registration with the app\'s managed identity.'
  issuer: issuer
  subject: identityPrincipalId
  audiences: [
    'api://AzureADTokenExchange'
  ]
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: registration.appId
  appRoleAssignmentRequired: true // only principals assigned the role can sign in to the console
}

resource admins 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for admin in adminPrincipalIds: {
    appRoleId: adminRoleId
    principalId: admin
    resourceId: servicePrincipal.id
  }
]

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource authentication 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: registration.appId
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
          openIdIssuer: issuer
        }
        validation: {
          allowedAudiences: [
            registration.appId
            'api://${registration.appId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: true // the console's views are #/logs, #/actions, ...
      allowedExternalRedirectUrls: []
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: '${padLeft(string(sessionHours), 2, '0')}:00:00'
      }
      nonce: {
        validateNonce: true
      }
    }
  }
  dependsOn: [
    signInCredential
  ]
}

output clientId string = registration.appId
output servicePrincipalId string = servicePrincipal.id
output adminRole string = adminRoleValue
output consoleUrl string = 'https://${appHostName}/api/console'
