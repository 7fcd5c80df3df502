// Step 1 of the bot's Entra app registration: create it (or find it) by its uniqueName, so the
// appId Entra assigns is known to step 3 (entra-app.bicep), which sets the identifier URI
// api://botid-{appId}. Only display name and audience are sent here: the Graph extension
// upserts with PATCH /applications(uniqueName='…') (learn.microsoft.com graph/api/application-upsert),
// and a PATCH leaves out what it does not name, so on a re-provision this step keeps the
// identifier URI, scope and pre-authorizations step 3 wrote before. It must never carry `api`:
// a PATCH that carries `api` is taken to replace it whole. Step 2 (entra-app-scope.bicep, first provision
// only) adds the scope before step 3 pre-authorizes Teams for it.

extension microsoftGraphV1

@description('Client-provided alternate key of the app registration; stable per azd environment.')
param uniqueName string

@description('Display name of the app registration.')
param displayName string

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
}

output appId string = app.appId
