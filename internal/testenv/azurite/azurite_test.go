package azurite_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
)

// The data written before Stop must be readable after Restart on the same port, and while
// stopped the service must refuse connections.
func TestStopRestartKeepsData(t *testing.T) {
	srv := azurite.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	opts := &aztables.ClientOptions{ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	svc, err := aztables.NewServiceClientFromConnectionString(srv.ConnectionString(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTable(ctx, "persist", nil); err != nil {
		t.Fatal(err)
	}
	tbl := svc.NewClient("persist")
	ent, _ := json.Marshal(map[string]any{"PartitionKey": "p", "RowKey": "r", "V": "kept"})
	if _, err := tbl.AddEntity(ctx, ent, nil); err != nil {
		t.Fatal(err)
	}
	port := srv.Port()

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.GetEntity(ctx, "p", "r", nil); err == nil {
		t.Fatal("read succeeded while Azurite was stopped")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if srv.Port() != port {
		t.Fatalf("port changed across restart: %d -> %d", port, srv.Port())
	}
	got, err := tbl.GetEntity(ctx, "p", "r", nil)
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	var m map[string]any
	_ = json.Unmarshal(got.Value, &m)
	if m["V"] != "kept" {
		t.Fatalf("after restart V = %v, want kept", m["V"])
	}
}
