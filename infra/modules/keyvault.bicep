// Key Vault in RBAC mode (no access policies). The UAMI reads secrets: the token-encryption key
// (each secret version is a key version) and third-party OAuth client secrets added later.

param name string
param location string
param tags object

// Not "secretsUserPrincipalId": the linter rule secure-secrets-in-params (error level in
// ../bicepconfig.json) flags every string parameter whose name contains "secret" unless it
// also contains secretname, secretversion, secreturi/secreturl or secretpermissions
// (Azure/bicep src/Bicep.Core/Analyzers/Linter/Rules/SecretsInParamsMustBeSecureRule.cs).
@description('Principal id of the identity that reads secrets (gets Key Vault Secrets User).')
param readerPrincipalId string

@description('Name of the token-encryption key secret (created by tokenstore-key.bicep).')
param tokenStoreKeyName string

var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

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
    publicNetworkAccess: 'Enabled'
  }
}

resource secretsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
output tokenStoreKeyName string = tokenStoreKeyName
