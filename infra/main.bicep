// onbehalf — everything `azd up` creates, with no secret anywhere in the template, its
// inputs, its outputs or the deployment history.
//
//   user-assigned managed identity (UAMI) ──FIC #1──▶ Entra app (no password credentials)
//   Azure Bot (single tenant) ── OAuth connection "sso" ──FIC #2──▶ same Entra app
//   Function App (Flex Consumption, custom handler) runs as the UAMI, which holds data-plane
//   roles on Storage (shared keys off) and Key Vault (RBAC), and publishes telemetry with Entra auth.
//
// The Entra objects are declared with the Microsoft Graph Bicep extension (see bicepconfig.json;
// learn.microsoft.com/graph/templates). The deploying user needs an Entra role that can create
// app registrations (Application Developer or Cloud Application Administrator) and an Azure
// role that can create role assignments (Owner, User Access Administrator or RBAC Administrator).

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to derive resource names.')
param environmentName string

@minLength(1)
@description('Region for every regional resource. It must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Display name of the bot, its Entra app and the Teams app.')
param botDisplayName string = 'onbehalf'

@description('Handler log level (LOG_LEVEL app setting).')
param logLevel string = 'info'

@description('Override for BOTFRAMEWORK_OPENID_METADATA_URL (sovereign clouds); empty keeps the handler default.')
param botFrameworkOpenIdMetadataUrl string = ''

@description('Override for BOTFRAMEWORK_SCOPE (sovereign clouds); empty keeps the handler default.')
param botFrameworkScope string = ''

@description('Override for BOTFRAMEWORK_TOKEN_SERVICE_URL (sovereign or regional token service); empty keeps the handler default.')
param botFrameworkTokenServiceUrl string = ''

@description('Data residency of the Bot Service token service (learn.microsoft.com azure/bot-service/ref-oauth-redirect-urls): global, europe, unitedstates or india. It moves BOTFRAMEWORK_TOKEN_SERVICE_URL, the app registration\'s OAuth redirect URI and the Azure Bot\'s location together, so sign-ins stay in one region.')
@allowed([
  'global'
  'europe'
  'unitedstates'
  'india'
])
param botTokenRegion string = 'global'

// The documented token service of each region, and the Azure Bot location that keeps the bot's
// data there (regional bots exist for Europe and India: bot-builder-concept-regionalization).
var tokenServiceUrls = {
  global: 'https://token.botframework.com'
  europe: 'https://europe.token.botframework.com'
  unitedstates: 'https://unitedstates.token.botframework.com'
  india: 'https://india.token.botframework.com'
}
var botLocations = {
  global: 'global'
  europe: 'westeurope'
  unitedstates: 'global'
  india: 'centralindia'
}
var tokenServiceUrl = empty(botFrameworkTokenServiceUrl) ? tokenServiceUrls[botTokenRegion] : botFrameworkTokenServiceUrl

@description('Override for GRAPH_URL (sovereign clouds, e.g. https://graph.microsoft.us); empty keeps the handler default.')
param graphUrl string = ''

@description('Override for GRAPH_RESOURCE, Graph\'s token audience (sovereign clouds); empty keeps the handler default.')
param graphResource string = ''

@description('Client id of the Atlassian OAuth 2.0 (3LO) app (ATLASSIAN_CLIENT_ID); empty leaves Jira and Confluence off. Its secret goes into Key Vault as the secret named by atlassianClientSecretName.')
param atlassianClientId string = ''

@description('Name of the Key Vault secret holding the Atlassian client secret (ATLASSIAN_CLIENT_SECRET_NAME).')
param atlassianClientSecretName string = 'atlassian-client-secret'

@description('Generic OAuth 2.0 connectors (OAUTH2_CONNECTORS, a JSON array; client secrets are Key Vault secret names, never values).')
param oauth2Connectors string = ''

@description('Organisation APIs protected by Entra ID, called on the user\'s behalf (ENTRA_APIS, a JSON array).')
param entraApis string = ''

@description('SAML-only applications reached as the user through their RFC 7522 token endpoint (SAML_APPS, a JSON array; client secrets are Key Vault secret names, never values).')
param samlApps string = ''
@description('Legacy LDAP directory, ldaps://host[:port] or ldap://host[:port] with StartTLS (LDAP_URL); empty leaves the LDAP commands off. The directory must support RFC 4370 proxied authorization.')
param ldapUrl string = ''

@description('Subtree the LDAP commands search (LDAP_BASE_DN), and where users\' entries are (LDAP_USER_BASE_DN; empty = the same).')
param ldapBaseDn string = ''
param ldapUserBaseDn string = ''

@description('Token claim (upn, mail or oid) and directory attribute that identify the user\'s entry (LDAP_USER_CLAIM, LDAP_USER_ATTRIBUTE).')
param ldapUserClaim string = 'upn'
param ldapUserAttribute string = 'mail'

@description('Key Vault secret holding the bot\'s PEM client certificate and key for SASL EXTERNAL (LDAP_CLIENT_CERT_SECRET_NAME); or leave empty and set ldapBindDn for a simple bind whose password is the Key Vault secret ldapBindPasswordSecretName.')
param ldapClientCertSecretName string = ''
param ldapBindDn string = ''
param ldapBindPasswordSecretName string = 'ldap-bind-password'

@description('The assistant\'s model (free text in plain words): none (the assistant is off), create (a new Azure OpenAI account and model deployment in this resource group), or existing (an account you already have, named by openAiAccountId; nothing is created there but the role assignment). Either way the Function App identity gets Cognitive Services OpenAI User only, and no key exists.')
@allowed([
  'none'
  'create'
  'existing'
])
param assistantModel string = 'none'

@description('existing: resource id of the Azure OpenAI / AI Foundry account (/subscriptions/…/resourceGroups/…/providers/Microsoft.CognitiveServices/accounts/NAME). The deploying user must be able to assign roles on it.')
param openAiAccountId string = ''

@description('Model deployment name (AZURE_OPENAI_DEPLOYMENT): required for existing; for create, empty means the model name.')
param openAiDeploymentName string = ''

@description('create: the model, its version, the deployment type and its capacity (thousands of tokens per minute), and the region (empty = location); the model must be offered there.')
param openAiModelName string = 'gpt-4o-mini'
param openAiModelVersion string = '2024-07-18'
param openAiSkuName string = 'GlobalStandard'
param openAiCapacity int = 10
param openAiLocation string = ''

@description('Data-plane API version (AZURE_OPENAI_API_VERSION); empty keeps the handler default.')
param openAiApiVersion string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// The OAuth connection name the handler asks the Bot Service token API for (BOT_OAUTH_CONNECTION).
var oauthConnectionName = 'sso'

// Name of the Key Vault secret whose versions are the token-encryption key versions.
var tokenStoreKeyName = 'tokenstore-key'

// Stable per environment, so re-provisioning keeps the same app registration.
var entraUniqueName = 'onbehalf-${environmentName}-${resourceToken}'

// The OAuth connection's UniqueIdentifier; FIC #2 trusts the token store for exactly this value.
var oauthConnectionUniqueId = guid(subscription().id, environmentName, 'bot-oauth-connection-sso')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

// The app registration is declared in three steps (three deployments, one PATCH each):
//   1. entra-app-register: create or find it by uniqueName, so its appId is known;
//   2. entra-app-scope (first provision only): expose access_as_user on its own, because Graph
//      refuses a pre-authorization for a scope the app does not carry yet;
//   3. entra-app: identifier URI api://botid-{appId}, the same scope, the Teams
//      pre-authorizations and everything else.
// A PATCH that carries `api` is taken to replace it whole, so step 2 must not run once step 3
// has: azd stores the output BOT_ENTRA_SCOPE_PROVISIONED after the first provision, and
// main.parameters.json feeds it back as entraScopeProvisioned. See modules/entra-app.bicep.
@description('Grant tenant-wide consent for the Graph delegated permissions (needs an admin role; see README).')
param grantGraphConsent bool = true

@description('True once a provision has completed: the app registration already exposes access_as_user, so step 2 (which would send an api without the Teams pre-authorizations) is skipped. azd sets it from the output BOT_ENTRA_SCOPE_PROVISIONED.')
param entraScopeProvisioned bool = false

module entraRegistration 'modules/entra-app-register.bicep' = {
  name: 'entra-app-register'
  scope: rg
  params: {
    uniqueName: entraUniqueName
    displayName: botDisplayName
  }
}

module entraScope 'modules/entra-app-scope.bicep' = if (!entraScopeProvisioned) {
  name: 'entra-app-scope'
  scope: rg
  params: {
    uniqueName: entraUniqueName
    displayName: botDisplayName
  }
  dependsOn: [
    entraRegistration
  ]
}

module entraApp 'modules/entra-app.bicep' = {
  name: 'entra-app'
  scope: rg
  dependsOn: [
    entraScope
  ]
  params: {
    uniqueName: entraUniqueName
    displayName: botDisplayName
    appId: entraRegistration.outputs.appId
    managedIdentityPrincipalId: identity.outputs.principalId
    oauthConnectionUniqueId: oauthConnectionUniqueId
    grantGraphConsent: grantGraphConsent
    tokenServiceRedirectUri: '${tokenServiceUrl}/.auth/web/redirect'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package'
    dataPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    readerPrincipalId: identity.outputs.principalId
    tokenStoreKeyName: tokenStoreKeyName
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    location: location
    tags: union(tags, {
      'azd-service-name': 'app'
    })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appSettings: union({
      BOT_APP_ID: entraApp.outputs.appId
      BOT_TENANT_ID: tenant().tenantId
      BOT_MANAGED_IDENTITY_CLIENT_ID: identity.outputs.clientId
      BOT_OAUTH_CONNECTION: oauthConnectionName
      ENTRA_AUTHORITY_HOST: entraAuthorityHost
      TOKENSTORE_TABLE_ENDPOINT: storage.outputs.tableEndpoint
      // The queue trigger (functions/work) and the handler's enqueuing share this identity-based
      // connection setting; the UAMI holds Storage Queue Data Contributor (modules/storage.bicep).
      AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
      TOKENSTORE_KEYVAULT_URL: keyVault.outputs.uri
      TOKENSTORE_KEY_NAME: tokenStoreKeyName
      LOG_LEVEL: logLevel
    }, botFrameworkOverrides, connectorSettings, ldapSettings, assistantSettings)
  }
}

// The assistant's model: created here, or an existing account (in its own resource group).
var openAiDeployment = empty(openAiDeploymentName) ? openAiModelName : openAiDeploymentName
var openAiExistingParts = split(empty(openAiAccountId) ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/${rg.name}/providers/Microsoft.CognitiveServices/accounts/none' : openAiAccountId, '/')

module openAi 'modules/openai.bicep' = if (assistantModel == 'create') {
  name: 'openai'
  scope: rg
  params: {
    name: 'oai-${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: openAiDeployment
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    skuName: openAiSkuName
    capacity: openAiCapacity
    userPrincipalId: identity.outputs.principalId
  }
}

module openAiExisting 'modules/openai-existing.bicep' = if (assistantModel == 'existing') {
  name: 'openai-existing'
  scope: resourceGroup(openAiExistingParts[2], openAiExistingParts[4])
  params: {
    accountName: last(openAiExistingParts)
    userPrincipalId: identity.outputs.principalId
  }
}

// The handler's assistant settings (internal/config/assistant.go); no key, ever.
var openAiEndpoint = assistantModel == 'create' ? openAi!.outputs.endpoint : (assistantModel == 'existing' ? openAiExisting!.outputs.endpoint : '')
var assistantSettings = assistantModel == 'none' ? {} : union({
  AZURE_OPENAI_ENDPOINT: openAiEndpoint
  AZURE_OPENAI_DEPLOYMENT: openAiDeployment
}, empty(openAiApiVersion) ? {} : { AZURE_OPENAI_API_VERSION: openAiApiVersion })

// login endpoint without the trailing slash, e.g. https://login.microsoftonline.com
var entraAuthorityHost = substring(environment().authentication.loginEndpoint, 0, length(environment().authentication.loginEndpoint) - 1)

var botFrameworkOverrides = union(
  empty(botFrameworkOpenIdMetadataUrl) ? {} : { BOTFRAMEWORK_OPENID_METADATA_URL: botFrameworkOpenIdMetadataUrl },
  empty(botFrameworkScope) ? {} : { BOTFRAMEWORK_SCOPE: botFrameworkScope },
  empty(botFrameworkTokenServiceUrl) && botTokenRegion == 'global' ? {} : { BOTFRAMEWORK_TOKEN_SERVICE_URL: tokenServiceUrl },
  empty(graphUrl) ? {} : { GRAPH_URL: graphUrl },
  empty(graphResource) ? {} : { GRAPH_RESOURCE: graphResource }
)

// Connectors: only what is configured. Secrets stay in Key Vault; these are names and ids.
var connectorSettings = union(
  empty(atlassianClientId) ? {} : { ATLASSIAN_CLIENT_ID: atlassianClientId, ATLASSIAN_CLIENT_SECRET_NAME: atlassianClientSecretName },
  empty(oauth2Connectors) ? {} : { OAUTH2_CONNECTORS: oauth2Connectors },
  empty(entraApis) ? {} : { ENTRA_APIS: entraApis },
  empty(samlApps) ? {} : { SAML_APPS: samlApps }
)

// LDAP: names and DNs only; the credential stays in Key Vault (TOKENSTORE_KEYVAULT_URL's vault).
var ldapSettings = empty(ldapUrl) ? {} : union({
  LDAP_URL: ldapUrl
  LDAP_BASE_DN: ldapBaseDn
  LDAP_USER_CLAIM: ldapUserClaim
  LDAP_USER_ATTRIBUTE: ldapUserAttribute
}, empty(ldapUserBaseDn) ? {} : { LDAP_USER_BASE_DN: ldapUserBaseDn },
  empty(ldapClientCertSecretName) ? { LDAP_BIND_DN: ldapBindDn, LDAP_BIND_PASSWORD_SECRET_NAME: ldapBindPasswordSecretName } : { LDAP_CLIENT_CERT_SECRET_NAME: ldapClientCertSecretName })

module bot 'modules/bot.bicep' = {
  name: 'bot'
  scope: rg
  params: {
    name: 'bot-${resourceToken}'
    location: botLocations[botTokenRegion]
    displayName: botDisplayName
    tags: tags
    appId: entraApp.outputs.appId
    messagingEndpoint: 'https://${functionApp.outputs.hostName}/api/messages'
    oauthConnectionName: oauthConnectionName
    oauthConnectionUniqueId: oauthConnectionUniqueId
    identifierUri: entraApp.outputs.identifierUri
    ssoScope: entraApp.outputs.ssoScope
  }
}

// The first token-encryption key is generated inside a deployment script; see the module header.
module tokenKey 'modules/tokenstore-key.bicep' = {
  name: 'tokenstore-key'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: keyVault.outputs.name
    secretName: tokenStoreKeyName
    setupIdentityName: 'id-setup-${resourceToken}'
  }
}

// Outputs: azd writes each to .azure/<env>/.env; scripts/package-teams-app.sh reads them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output BOT_APP_ID string = entraApp.outputs.appId
output BOT_TENANT_ID string = tenant().tenantId
output BOT_IDENTIFIER_URI string = entraApp.outputs.identifierUri
output BOT_NAME string = bot.outputs.name
output BOT_OAUTH_CONNECTION string = oauthConnectionName
output BOT_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output BOT_PUBLIC_URL string = 'https://${functionApp.outputs.hostName}'
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_HOSTNAME string = functionApp.outputs.hostName
output TOKENSTORE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output TOKENSTORE_KEYVAULT_URL string = keyVault.outputs.uri
output TOKENSTORE_KEY_NAME string = tokenStoreKeyName
output TOKENSTORE_KEY_VERSION string = tokenKey.outputs.secretVersion
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
// Read back through main.parameters.json (entraScopeProvisioned) on the next provision.
output BOT_ENTRA_SCOPE_PROVISIONED bool = true
output AZURE_OPENAI_ENDPOINT string = openAiEndpoint
output AZURE_OPENAI_DEPLOYMENT string = assistantModel == 'none' ? '' : openAiDeployment
output TEAMS_APP_ID string = guid(subscription().id, environmentName, 'teams-app')
