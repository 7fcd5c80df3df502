// Step 3 of the bot's Entra app registration: the whole Teams SSO configuration.
//
// An application cannot reference its own appId inside its declaration (Bicep rejects the cycle),
// yet Teams requires the identifier URI api://botid-{appId}. entra-app-register.bicep (step 1)
// creates the app by uniqueName and returns its appId; this module declares the same app again,
// by the same uniqueName, with everything else. The Graph extension upserts by uniqueName
// (PATCH /applications(uniqueName='…'), learn.microsoft.com graph/api/application-upsert), so
// each declaration updates the one before. Two declarations must live in two deployments
// (two modules): one deployment cannot hold two resources with the same identity.
//
// Graph refuses pre-authorizations for a scope the app does not carry yet, so on the first
// provision entra-app-scope.bicep (step 2) adds access_as_user before this step runs. A PATCH
// that carries `api` is taken to replace it whole, so this declaration carries all of it: the scope (the
// same object as step 2), the token version and both pre-authorizations. On a re-provision
// step 2 is skipped and steps 1 and 3 never send an `api` without the pre-authorizations.
//
// What Teams SSO needs (Microsoft Teams SSO architecture; msteams-docs bot-sso-register-aad):
//   identifier URI        api://botid-{appId}
//   delegated scope       access_as_user
//   pre-authorized        Teams desktop/mobile 1fec8e78-bce4-4aaf-ab1b-5451cc387264
//                         Teams web            5e3ce6c0-2b1f-4285-8d4b-75ee78787346
//   redirect URI          https://token.botframework.com/.auth/web/redirect, and the regional
//                         token service's when the bot's data stays in a region
//                         (learn.microsoft.com azure/bot-service/ref-oauth-redirect-urls)
//   access token version  2
// The app has no password credentials: it authenticates with two federated identity credentials.

extension microsoftGraphV1

@description('Client-provided alternate key of the app registration (same as in every step).')
param uniqueName string

@description('OAuth redirect URI of the token service the handler uses ({BOTFRAMEWORK_TOKEN_SERVICE_URL}/.auth/web/redirect).')
param tokenServiceRedirectUri string

@description('Display name of the app registration.')
param displayName string

@description('appId returned by step 1 (entra-app-register.bicep).')
param appId string

@description('Object (principal) id of the user-assigned managed identity trusted by FIC #1.')
param managedIdentityPrincipalId string

@description('UniqueIdentifier of the Azure Bot OAuth connection trusted by FIC #2.')
param oauthConnectionUniqueId string

@description('Grant tenant-wide (admin) consent for the Graph delegated permissions the connectors use. Needs a deployer who may grant it (Cloud Application Administrator or Privileged Role Administrator); set false to grant it later with `az ad app permission admin-consent`.')
param grantGraphConsent bool = true

var identifierUri = 'api://botid-${appId}'

// A constant, so the scope keeps its id across provisions (pre-authorizations refer to it);
// entra-app-scope.bicep declares the same id.
var accessAsUserScopeId = '754c9c36-1ceb-4c19-bbc0-b1ac8f3e9e72'

var teamsDesktopClientId = '1fec8e78-bce4-4aaf-ab1b-5451cc387264'
var teamsWebClientId = '5e3ce6c0-2b1f-4285-8d4b-75ee78787346'

// Microsoft Graph and the ids of the delegated permissions the connectors use
// (learn.microsoft.com graph/permissions-reference).
var graphAppId = '00000003-0000-0000-c000-000000000000'
var graphDelegatedScopes = [
  'e1fe6dd8-ba31-4d61-89e7-88639da4683d' // User.Read
  '570282fd-fa5c-430d-a7fd-fc8dc98a9dca' // Mail.Read
  'df85f4d6-205c-4ac5-a5ea-6bf408dba283' // Files.Read.All
  '7427e0e9-2fba-42fe-b0c0-848c9e6a8182' // offline_access
  '37f7f235-527c-4136-accd-4a02d197296e' // openid
  '14dad69e-099b-42c9-810b-d002981feec1' // profile
]

// Federated credentials: issuer is the tenant's v2.0 authority, audience the token-exchange
// audience of this cloud (public cloud value; see "Sovereign clouds" in README.md).
var issuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
var tokenExchangeAudience = 'api://AzureADTokenExchange'

// The Bot Service token store presents tokens whose subject is
//   /eid1/c/pub/t/{tenant id, base64url}/a/9ExAW52n_ky4ZiS_jhpJIQ/{OAuth connection UniqueIdentifier}
// where the ids are base64url (no padding) of the GUIDs' 16 bytes in little-endian (.NET) order;
// 9ExAW52n_ky4ZiS_jhpJIQ is the token store's own app id 5b404cf4-a79d-4cfe-b866-24bf8e1a4921
// (learn.microsoft.com microsoft-365/agents-sdk/azure-bot-user-authorization-federated-credentials).
// Bicep has no byte functions, so the tenant id is encoded with string arithmetic: reorder the
// hex digits into little-endian byte order, then turn each 3 hex digits (12 bits) into 2 base64url
// characters; the last 2 hex digits are padded with 4 zero bits. The same arithmetic reproduces
// 9ExAW52n_ky4ZiS_jhpJIQ from 5b404cf4-… and matches base64url(bytes_le) for random GUIDs.
var hexDigits = '0123456789abcdef'
var base64UrlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
var tenantHex = toLower(replace(tenant().tenantId, '-', ''))
var tenantHexLittleEndian = '${substring(tenantHex, 6, 2)}${substring(tenantHex, 4, 2)}${substring(tenantHex, 2, 2)}${substring(tenantHex, 0, 2)}${substring(tenantHex, 10, 2)}${substring(tenantHex, 8, 2)}${substring(tenantHex, 14, 2)}${substring(tenantHex, 12, 2)}${substring(tenantHex, 16, 16)}'
var tenantTwelveBitGroups = [for g in range(0, 10): indexOf(hexDigits, substring(tenantHexLittleEndian, g * 3, 1)) * 256 + indexOf(hexDigits, substring(tenantHexLittleEndian, g * 3 + 1, 1)) * 16 + indexOf(hexDigits, substring(tenantHexLittleEndian, g * 3 + 2, 1))]
var tenantLastGroup = (indexOf(hexDigits, substring(tenantHexLittleEndian, 30, 1)) * 16 + indexOf(hexDigits, substring(tenantHexLittleEndian, 31, 1))) * 16
var tenantBase64UrlChars = [for v in concat(tenantTwelveBitGroups, [tenantLastGroup]): '${substring(base64UrlAlphabet, v / 64, 1)}${substring(base64UrlAlphabet, v % 64, 1)}']
var tenantBase64Url = join(tenantBase64UrlChars, '')
var botTokenStoreSubject = '/eid1/c/pub/t/${tenantBase64Url}/a/9ExAW52n_ky4ZiS_jhpJIQ/${oauthConnectionUniqueId}'

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    identifierUri
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: accessAsUserScopeId
        value: 'access_as_user'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Act as the signed-in user in ${displayName}'
        adminConsentDescription: 'Lets Teams and the bot call back ends as the signed-in user.'
        userConsentDisplayName: 'Act as you in ${displayName}'
        userConsentDescription: 'Lets ${displayName} call back ends as you.'
      }
    ]
    preAuthorizedApplications: [
      {
        appId: teamsDesktopClientId
        delegatedPermissionIds: [
          accessAsUserScopeId
        ]
      }
      {
        appId: teamsWebClientId
        delegatedPermissionIds: [
          accessAsUserScopeId
        ]
      }
    ]
  }
  web: {
    // union drops the duplicate when the regional service is the global one (Graph refuses
    // duplicate values).
    redirectUris: union([
      'https://token.botframework.com/.auth/web/redirect'
    ], [
      tokenServiceRedirectUri
    ])
  }
  // What the OAuth connection's {identifier URI}/.default consent covers: the Graph permissions
  // and the bot's own access_as_user, so one prompt consents to both where no administrator has.
  requiredResourceAccess: [
    {
      resourceAppId: appId
      resourceAccess: [
        {
          id: accessAsUserScopeId
          type: 'Scope'
        }
      ]
    }
    {
      resourceAppId: graphAppId
      resourceAccess: [for scopeId in graphDelegatedScopes: {
        id: scopeId
        type: 'Scope'
      }]
    }
  ]

  // FIC #1: the Function App's managed identity is the app's credential (client assertion).
  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${uniqueName}/function-app-identity'
    description: 'The Function App user-assigned managed identity acts as this app.'
    issuer: issuer
    subject: managedIdentityPrincipalId
    audiences: [
      tokenExchangeAudience
    ]
  }

  // FIC #2: the Bot Service token store, for the OAuth connection of kind
  // "AAD v2 with Federated Credentials".
  resource botTokenStoreCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${uniqueName}/bot-service-token-store'
    description: 'The Azure Bot Service token store acts as this app for the sso OAuth connection.'
    issuer: issuer
    subject: botTokenStoreSubject
    audiences: [
      tokenExchangeAudience
    ]
  }
}

// The service principal: the bot's identity in this tenant (tokens are issued to it).
resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
}

// Microsoft Graph's service principal in this tenant, the resource of the consent below.
resource graphServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

// Tenant-wide consent for the delegated Graph permissions, so that on-behalf-of calls to Graph
// succeed without asking every user (learn.microsoft.com graph/api/resources/oauth2permissiongrant;
// consentType AllPrincipals = admin consent). The bot still acts only as each user, within what
// that user may see.
resource graphConsent 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = if (grantGraphConsent) {
  clientId: servicePrincipal.id
  consentType: 'AllPrincipals'
  resourceId: graphServicePrincipal.id
  scope: 'User.Read Mail.Read Files.Read.All offline_access openid profile'
}

// The same tenant-wide consent for the bot's own API, which the OAuth connection's .default
// sign-in and the token service's exchange ask for.
resource selfConsent 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = if (grantGraphConsent) {
  clientId: servicePrincipal.id
  consentType: 'AllPrincipals'
  resourceId: servicePrincipal.id
  scope: 'access_as_user'
}

output appId string = app.appId
output identifierUri string = identifierUri
output ssoScope string = '${identifierUri}/.default'
output servicePrincipalId string = servicePrincipal.id
output botTokenStoreSubject string = botTokenStoreSubject
