// The first token-encryption key, created so its value never appears in the template, the
// deployment inputs or outputs, or the deployment history.
//
// Options weighed:
//   - a Key Vault secret resource whose value comes from a parameter or newGuid(): the value
//     becomes a deployment input, and a GUID is not 32 random bytes — rejected;
//   - a Key Vault key (vaults/keys) generated inside the vault: the material never leaves the
//     vault, but the handler would then wrap and unwrap through the Key Vault crypto API on
//     every use, which is not how the token store reads its keys (secret versions) — rejected;
//   - a deployment script (chosen): a container runs as a setup identity, draws 32 random bytes
//     from the kernel and stores them base64-encoded with `az keyvault secret set --file`. The
//     bytes exist only inside the container; the script prints nothing and its output is the
//     secret version. It runs once: when the secret already exists it changes nothing, so a
//     re-provision never rotates the key under stored tokens (rotation = add a secret version).
// The setup identity is not the Function App's identity: only it holds Key Vault Secrets
// Officer, scoped to this vault; the app's identity can only read secrets.
// (learn.microsoft.com azure-resource-manager/bicep/deployment-script-bicep; Key Vault built-in roles.)

param location string
param tags object
param keyVaultName string
param secretName string
param setupIdentityName string

var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource setupIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: setupIdentityName
  location: location
  tags: tags
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, setupIdentity.id, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    principalId: setupIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
  }
}

resource createKey 'Microsoft.Resources/deploymentScripts@2023-08-01' = {
  name: 'create-${secretName}'
  location: location
  tags: tags
  kind: 'AzureCLI'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${setupIdentity.id}': {}
    }
  }
  dependsOn: [
    secretsOfficer
  ]
  properties: {
    azCliVersion: '2.63.0'
    retentionInterval: 'PT1H'
    cleanupPreference: 'Always'
    timeout: 'PT15M'
    environmentVariables: [
      {
        name: 'VAULT_NAME'
        value: keyVaultName
      }
      {
        name: 'SECRET_NAME'
        value: secretName
      }
    ]
    scriptContent: loadTextContent('../scripts/create-tokenstore-key.sh')
  }
}

output secretName string = secretName
output secretVersion string = createKey.properties.outputs.version
