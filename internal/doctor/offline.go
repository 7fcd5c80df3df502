package doctor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// OfflineFiles names the JSON files of an offline diagnosis. Empty names are skipped, and
// the checks that need them say so.
//
// Example (what each command writes):
//
//	az ad app show --id $APP_ID                              > app.json
//	az bot show -g $RG -n $BOT                               > bot.json
//	az bot authsetting show -g $RG -n $BOT -c sso            > connection.json
//	appPackage/manifest.json (with the deployed ids)          manifest.json
//	az functionapp config appsettings list -g $RG -n $APP    > settings.json   (or local.settings.json)
//	az ad app federated-credential list --id $APP_ID         > fic.json
//	az identity show -g $RG -n $UAMI                         > identity.json
//	az role assignment list --all --assignee $UAMI_PRINCIPAL > roles.json
//	az ad app permission list-grants --id $APP_ID            > grants.json
type OfflineFiles struct {
	App, Bot, Connection, Manifest, Settings                string
	FederatedCredentials, Identity, RoleAssignments, Grants string
}

// LoadOffline reads the files into a snapshot. A file that cannot be read or parsed is an
// error naming it: a diagnosis from half-read input would mislead.
func LoadOffline(f OfflineFiles) (*Snapshot, error) {
	s := &Snapshot{Mode: "offline", Absent: map[string]string{}, NotFound: map[string]string{}}
	for _, src := range []string{"probe", "sp", "saml", "model"} {
		s.Absent[src] = "offline mode: checked in live mode (--subscription, --resource-group, --bot-name)"
	}
	s.Absent["channel"] = "offline"

	load := func(path, flag, source string, into any) (bool, error) {
		if path == "" {
			s.Absent[source] = "no " + flag + " file given"
			return false, nil
		}
		if err := readJSON(path, into); err != nil {
			return false, fmt.Errorf("doctor: read %s %s: %w", flag, path, err)
		}
		return true, nil
	}

	var app App
	if ok, err := load(f.App, "--app", "app", &app); err != nil {
		return nil, err
	} else if ok {
		s.App = &app
	}
	var bot Bot
	if ok, err := load(f.Bot, "--bot", "bot", &bot); err != nil {
		return nil, err
	} else if ok {
		s.Bot = &bot
	}
	var conn Connection
	if ok, err := load(f.Connection, "--connection", "connection", &conn); err != nil {
		return nil, err
	} else if ok {
		s.Connection = &conn
	}
	var man Manifest
	if ok, err := load(f.Manifest, "--manifest", "manifest", &man); err != nil {
		return nil, err
	} else if ok {
		s.Manifest = &man
	}

	if f.Settings == "" {
		s.Absent["settings"] = "no --settings file given"
	} else {
		settings, inAzure, err := readSettings(f.Settings)
		if err != nil {
			return nil, fmt.Errorf("doctor: read --settings %s: %w", f.Settings, err)
		}
		s.Settings, s.SettingsInAzure = settings, inAzure
	}

	var fics []FederatedCredential
	if ok, err := load(f.FederatedCredentials, "--federated-credentials", "fics", listOrValue(&fics)); err != nil {
		return nil, err
	} else if ok {
		s.FederatedCredentials, s.FICsKnown = fics, true
	} else if s.App != nil && s.App.FederatedIdentityCredentials != nil {
		delete(s.Absent, "fics")
	}

	var id struct {
		ID          string `json:"id"`
		PrincipalID string `json:"principalId"`
		ClientID    string `json:"clientId"`
	}
	if ok, err := load(f.Identity, "--identity", "identity", &id); err != nil {
		return nil, err
	} else if ok {
		s.Identity = &ManagedIdentity{ResourceID: id.ID, PrincipalID: strings.ToLower(id.PrincipalID), ClientID: strings.ToLower(id.ClientID)}
	}

	var ras []struct {
		Scope            string `json:"scope"`
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
	}
	if ok, err := load(f.RoleAssignments, "--role-assignments", "roles", listOrValue(&ras)); err != nil {
		return nil, err
	} else if ok {
		s.RolesKnown = true
		for _, r := range ras {
			s.RoleAssignments = append(s.RoleAssignments, RoleAssignment{Scope: r.Scope, RoleDefinitionID: r.RoleDefinitionID, PrincipalID: r.PrincipalID})
		}
	}

	var grants []PermissionGrant
	if ok, err := load(f.Grants, "--grants", "grants", listOrValue(&grants)); err != nil {
		return nil, err
	} else if ok {
		s.Grants, s.GrantsKnown = grants, true
	}
	if s.Bot != nil {
		s.Subscription = armSegment(s.Bot.ID, "subscriptions")
	}
	return s, nil
}

func readJSON(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("not the expected JSON: %w", err)
	}
	return nil
}

// listOrValue decodes either a JSON array (az CLI) or a Graph/ARM page {"value": [...]}.
func listOrValue[T any](into *[]T) json.Unmarshaler { return &listOrValueOf[T]{into} }

type listOrValueOf[T any] struct{ into *[]T }

func (l *listOrValueOf[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var page struct {
			Value []T `json:"value"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return err
		}
		*l.into = page.Value
		return nil
	}
	return json.Unmarshal(b, l.into)
}

// readSettings accepts local.settings.json ({"Values": {...}}: local development) or the
// output of `az functionapp config appsettings list` ([{name, value}]: a deployed app).
func readSettings(path string) (map[string]string, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	b = bytes.TrimSpace(b)
	out := map[string]string{}
	if len(b) > 0 && b[0] == '[' {
		var list []struct {
			Name  string  `json:"name"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, false, fmt.Errorf("not an app settings list: %w", err)
		}
		for _, kv := range list {
			if kv.Value != nil {
				out[kv.Name] = *kv.Value
			} else {
				out[kv.Name] = ""
			}
		}
		return out, true, nil
	}
	var local struct {
		Values map[string]any `json:"Values"`
	}
	if err := json.Unmarshal(b, &local); err != nil {
		return nil, false, fmt.Errorf("neither local.settings.json nor an app settings list: %w", err)
	}
	if local.Values == nil {
		return nil, false, fmt.Errorf("no \"Values\" object: neither local.settings.json nor an app settings list")
	}
	for k, v := range local.Values {
		switch t := v.(type) {
		case string:
			out[k] = t
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(t)
		}
	}
	return out, out["WEBSITE_SITE_NAME"] != "" || out["WEBSITE_INSTANCE_ID"] != "", nil
}
