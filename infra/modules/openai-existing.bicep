// The assistant's model on an Azure OpenAI / AI Foundry account that already exists (deployed
// in that account's resource group): nothing is created but the data-plane role for the
// Function App's identity. The account's model deployment is named by the caller.

@description('Name of the existing account (the last segment of its resource id).')
param accountName string

@description('Principal id of the identity that calls the model (gets Cognitive Services OpenAI User only).')
param userPrincipalId string

var openAiUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd' // Cognitive Services OpenAI User

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

resource modelUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, userPrincipalId, openAiUserRoleId)
  scope: account
  properties: {
    principalId: userPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', openAiUserRoleId)
  }
}

output endpoint string = account.properties.endpoint
