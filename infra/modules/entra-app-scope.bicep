// Step 2 of the bot's Entra app registration, on the first provision only: expose the
// access_as_user scope on its own, before anything pre-authorizes Teams for it.
//
// Graph refuses a pre-authorization whose delegatedPermissionIds name a scope the application
// does not already carry ("Property api.preAuthorizedApplications.delegatedPermissionIds has a
// Permission Id that cannot be found"; microsoftgraph/microsoft-graph-docs issues 20177 and
// 12675), and the Graph extension sends a declaration as one PATCH (learn.microsoft.com
// graph/api/application-upsert). So the scope reaches the app in this deployment and the
// pre-authorizations in the next one (entra-app.bicep).
//
// A PATCH that carries `api` is taken to replace it whole (OData 4.01 would merge; the template
// is safe either way): this declaration, which has no pre-authorizations, must never run
// against an app that already has them, or Teams SSO may stop until entra-app.bicep puts them
// back. main.bicep therefore deploys this module only while
// BOT_ENTRA_SCOPE_PROVISIONED is unset (azd stores that output after the first provision).
// Every declaration that carries `api` carries the same scope object below and
// requestedAccessTokenVersion 2; internal/deploycheck holds them to that.

extension microsoftGraphV1

@description('Client-provided alternate key of the app registration (same as in every step).')
param uniqueName string

@description('Display name of the app registration.')
param displayName string

// The same constant as in entra-app.bicep: pre-authorizations refer to the scope by this id.
var accessAsUserScopeId = '754c9c36-1ceb-4c19-bbc0-b1ac8f3e9e72'

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
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
  }
}

output appId string = app.appId
output scopeId string = accessAsUserScopeId
