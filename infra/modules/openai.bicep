// The assistant's model: an Azure OpenAI account with one chat model deployment, reached only
// with Entra tokens (keys disabled), and the data-plane role for the Function App's identity.
//
// Types checked against Azure/bicep-types-az generated/cognitiveservices/microsoft.cognitiveservices/
// 2024-10-01/types.json (see docs/fidelity.md). Role: Cognitive Services OpenAI User
// (learn.microsoft.com azure/role-based-access-control/built-in-roles/ai-machine-learning):
// inference and reading deployments; no keys, no management of deployments.

@description('Name of the account; also its custom subdomain, which token (Entra) authentication requires.')
param name string
param location string
param tags object

@description('Name of the model deployment (AZURE_OPENAI_DEPLOYMENT).')
param deploymentName string

@description('Model to deploy (format OpenAI), e.g. gpt-4o-mini, and its version, e.g. 2024-07-18.')
param modelName string
param modelVersion string

@description('Deployment type (GlobalStandard, Standard, DataZoneStandard, …) and its capacity in thousands of tokens per minute.')
param skuName string
param capacity int

@description('Principal id of the identity that calls the model (gets Cognitive Services OpenAI User only).')
param userPrincipalId string

var openAiUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd' // Cognitive Services OpenAI User

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: name
    // No keys: only Entra tokens are accepted, so nothing secret exists to leak.
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: skuName
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
    versionUpgradeOption: 'OnceNewDefaultVersionAvailable'
  }
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
output deploymentName string = deployment.name
