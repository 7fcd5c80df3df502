// Storage for the Functions host (AzureWebJobsStorage), the token store tables, the work queue
// (functions/work: slow answers, answers after sign-in) with its poison queue, and the Flex
// Consumption deployment container. Shared-key access is disabled:
// every client, the Functions host included, authenticates with Entra as the UAMI
// (learn.microsoft.com azure-functions functions-reference "connecting to host storage with an identity").

param name string
param location string
param tags object

@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string

@description('Principal id of the identity that gets the data-plane roles.')
param dataPrincipalId string

var roles = {
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  // Storage Queue Data Contributor: the queue trigger needs Reader + Message Processor and the
  // handler's enqueuing Message Sender (learn.microsoft.com azure-functions
  // functions-bindings-storage-queue "Grant permission to the identity"); Contributor covers all.
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner (host leases, deployment package)
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

// The work queue is created by the handler when it starts (Create Queue is within Storage Queue
// Data Contributor) and "work-poison" by the Functions host when it first moves a message
// there; neither is declared here.

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in items(roles): {
  name: guid(account.id, dataPrincipalId, role.value)
  scope: account
  properties: {
    principalId: dataPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
  }
}]

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = 'https://${account.name}.queue.${environment().suffixes.storage}'
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
output deploymentContainerName string = deploymentContainerName
