// The Azure Bot: single tenant, the Entra app's id, messaging endpoint on the Function App,
// the Teams channel, and the OAuth connection Teams SSO exchanges tokens through.
//
// OAuth connection of kind "AAD v2 with Federated Credentials" (serviceProviderId
// c00b44ab-5e16-c44c-af26-2fd5bc55eb18; parameter keys ClientId, UniqueIdentifier,
// TokenExchangeUrl, TenantId — learn.microsoft.com microsoft-365/agents-sdk/
// azure-bot-user-authorization-federated-credentials). It holds no client secret: the token
// store authenticates as the app through the app's FIC #2, whose subject ends in UniqueIdentifier.
// Its scope is the bot API's .default (combined consent for every permission the app lists), so
// the token it returns, for the bot's own API, is the assertion the
// handler exchanges on behalf of the user for downstream APIs.

param name string

@description('global, or the region a regional bot keeps its data in (westeurope, centralindia); it must match the token service BOTFRAMEWORK_TOKEN_SERVICE_URL names.')
param location string = 'global'

param displayName string
param tags object

@description('appId of the bot\'s Entra app registration.')
param appId string

@description('https URL of /api/messages on the Function App.')
param messagingEndpoint string

param oauthConnectionName string
param oauthConnectionUniqueId string

@description('Identifier URI of the Entra app, api://botid-{appId}.')
param identifierUri string

@description('The scope the OAuth connection asks for: {identifierUri}/.default (the bot API, with combined consent for every permission the app registration lists).')
param ssoScope string

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: location
  tags: tags
  kind: 'azurebot'
  sku: {
    name: 'F0'
  }
  properties: {
    displayName: displayName
    endpoint: messagingEndpoint
    msaAppId: appId
    msaAppTenantId: tenant().tenantId
    msaAppType: 'SingleTenant'
    disableLocalAuth: true
  }

  resource teams 'channels' = {
    name: 'MsTeamsChannel'
    location: location
    properties: {
      channelName: 'MsTeamsChannel'
      properties: {
        isEnabled: true
        deploymentEnvironment: 'CommercialDeployment'
      }
    }
  }

  resource sso 'connections' = {
    name: oauthConnectionName
    location: location
    properties: {
      serviceProviderId: 'c00b44ab-5e16-c44c-af26-2fd5bc55eb18'
      serviceProviderDisplayName: 'AAD v2 with Federated Credentials'
      clientId: appId
      scopes: ssoScope
      parameters: [
        {
          key: 'ClientId'
          value: appId
        }
        {
          key: 'UniqueIdentifier'
          value: oauthConnectionUniqueId
        }
        {
          key: 'TokenExchangeUrl'
          value: identifierUri
        }
        {
          key: 'TenantId'
          value: tenant().tenantId
        }
      ]
    }
  }
}

output name string = bot.name
output oauthConnectionName string = bot::sso.name
