package doctor

import "testing"

// BenchmarkRunChecks measures one diagnosis of a loaded deployment (all checks, no I/O).
func BenchmarkRunChecks(b *testing.B) {
	s, err := LoadOffline(OfflineFiles{
		App: testdataDir + "/app.json", Bot: testdataDir + "/bot.json", Connection: testdataDir + "/connection.json",
		Manifest: testdataDir + "/manifest.json", Settings: testdataDir + "/settings.json",
		FederatedCredentials: testdataDir + "/fic.json", Identity: testdataDir + "/identity.json",
		RoleAssignments: testdataDir + "/roles.json", Grants: testdataDir + "/grants.json",
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if r := RunChecks(s); r.Failed() {
			b.Fatal("the correct deployment failed")
		}
	}
}
