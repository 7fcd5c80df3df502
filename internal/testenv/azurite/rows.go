package azurite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Rows lists every entity of every table, with all its properties as the service returns
// them (full metadata). A stopped server, or a Queue server, has none to list.
func (s *Server) Rows(ctx context.Context) ([]logcheck.Row, error) {
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if !running || s.svc != Table {
		return nil, nil
	}
	svc, err := aztables.NewServiceClientFromConnectionString(s.ConnectionString(), &aztables.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: &http.Client{Timeout: 10 * time.Second}, Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		return nil, fmt.Errorf("azurite: table client: %w", err)
	}
	var rows []logcheck.Row
	tables := svc.NewListTablesPager(nil)
	for tables.More() {
		page, err := tables.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("azurite: list tables: %w", err)
		}
		for _, t := range page.Tables {
			name := *t.Name
			full := aztables.MetadataFormatFull
			ents := svc.NewClient(name).NewListEntitiesPager(&aztables.ListEntitiesOptions{Format: &full})
			for ents.More() {
				p, err := ents.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("azurite: list %s: %w", name, err)
				}
				for _, e := range p.Entities {
					props := map[string]any{}
					if err := json.Unmarshal(e, &props); err != nil {
						return nil, fmt.Errorf("azurite: entity of %s: %w", name, err)
					}
					rows = append(rows, logcheck.Row{Table: name, Properties: props})
				}
			}
		}
	}
	return rows, nil
}
