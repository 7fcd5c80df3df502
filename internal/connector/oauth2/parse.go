package oauth2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ParseConnectors decodes the OAUTH2_CONNECTORS setting: a JSON array of Config objects (see
// Config for an example). Unknown fields, invalid entries and duplicate names are errors,
// all reported at once; reserved names (built-in connectors such as "atlassian") are refused.
// Empty text means no connectors.
func ParseConnectors(text string, reserved ...string) ([]Config, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	var cs []Config
	if err := dec.Decode(&cs); err != nil {
		return nil, fmt.Errorf("OAUTH2_CONNECTORS: not a JSON array of connectors: %w", err)
	}
	var errs []error
	seen := map[string]bool{}
	for _, r := range reserved {
		seen[r] = true
	}
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i, err))
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("entry %d: name %q is already used", i, c.Name))
		}
		seen[c.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("OAUTH2_CONNECTORS: %w", err)
	}
	return cs, nil
}
