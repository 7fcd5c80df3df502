// Pass 1 of the bot's Entra app registration: create it (or find it) by its uniqueName, so the
// appId Entra assigns is known to pass 2 (entra-app.bicep), which sets the identifier URI
// api://botid-{appId}. Only display name and audience are sent here: the Graph extension
// upserts with PATCH /applications(uniqueName='…') (learn.microsoft.com graph/api/application-upsert),
// so properties left out keep the values pass 2 wrote on an earlier provision and a
// re-provision never drops the identifier URI, scope or pre-authorizations in between.

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
