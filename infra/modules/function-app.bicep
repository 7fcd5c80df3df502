// The Function App on Flex Consumption running the Go custom handler as the UAMI.
//
// Flex Consumption facts used here (learn.microsoft.com azure-functions flex-consumption-how-to and
// functions-app-settings; public sample anthonychu/functions-quickstart-go-azd-service-bus
// infra/core/host/functions-flexconsumption.bicep):
//   - plan sku FC1 / tier FlexConsumption, Linux (reserved: true);
//   - functionAppConfig.runtime { name: 'custom', version: '1.0' } runs a custom handler, and
//     the language worker setting must NOT be set on Flex;
//   - the package is deployed to a blob container, read with the UAMI;
//   - host storage through identity-based settings (AzureWebJobsStorage__accountName,
//     __credential = managedidentity, __clientId), as the account has shared keys disabled;
//   - with no always-ready instances the app scales to zero and costs nothing while idle;
//   - no FTP and no basicPublishingCredentialsPolicies children: Flex has no FTP(S) endpoint
//     (deprecations list above), no public source shows the publishing-credentials policies
//     applying to a Flex site (the canonical sample, Azure-Samples/azure-functions-flex-consumption-samples
//     IaC/bicep/main.bicep, declares none), and azd deploys the package to the blob container
//     with Entra, never with basic credentials. README "Deploy to Azure" says how to turn SCM
//     basic authentication off by hand.

param name string
param planName string
param location string
param tags object

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string

@description('Handler settings (names from the handler configuration); merged with the host settings below.')
param appSettings object

@description('Upper bound on instances; keeps a runaway bill impossible.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Instance memory. The Go handler is small: 512 MB is enough.')
param instanceMemoryMB int = 512

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
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

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
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
    keyVaultReferenceIdentity: identityId
    // No ftpsState here: Flex Consumption lists properties.ftpsState among its deprecated site
    // properties ("FTPS not supported"; learn.microsoft.com azure-functions functions-app-settings,
    // "Flex Consumption plan deprecations"), and some regions refuse a site that sets it.
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
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

// Settings live in their own resource so BOT_PUBLIC_URL can use the host name Azure assigned.
// None of them is a secret: identities, endpoints and names only.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(appSettings, {
    BOT_PUBLIC_URL: 'https://${site.properties.defaultHostName}'
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  })
}

output name string = site.name
output hostName string = site.properties.defaultHostName
