// The user-assigned managed identity the Function App runs as. Its tokens (audience
// api://AzureADTokenExchange) are the client assertions of the bot's Entra app (FIC #1), and it
// holds the data-plane roles on Storage and Key Vault.

@description('Name of the user-assigned managed identity.')
param name string
param location string
param tags object

resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = uami.id
output name string = uami.name
output principalId string = uami.properties.principalId
output clientId string = uami.properties.clientId
