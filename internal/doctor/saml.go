package doctor

// Checks of the SAML applications (SAML_APPS) that Microsoft Graph can show: the enterprise
// app exists with the configured Identifier, uses SAML single sign-on, sends its assertions to
// the application's token endpoint (the first non-wildcard reply URL becomes the Recipient:
// entra-docs v2-oauth2-on-behalf-of-flow.md, "SAML assertions obtained with an OAuth2.0 OBO
// flow"), says whether users must be assigned, and has granted the bot consent.
//
// Sources: microsoft-graph-docs-contrib api-reference/v1.0/resources/serviceprincipal.md
// (servicePrincipalNames — "The any operator is required for filter expressions on
// multi-valued properties" —, preferredSingleSignOnMode, replyUrls, appRoleAssignmentRequired),
// api/serviceprincipal-list.md ($filter), resources/oauth2permissiongrant.md (resourceId).

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/onbehalf/onbehalf/internal/connector/saml"
)

// SAMLServicePrincipal is the part of an enterprise app's service principal the doctor reads.
type SAMLServicePrincipal struct {
	ID                        string   `json:"id"`
	AppID                     string   `json:"appId"`
	DisplayName               string   `json:"displayName"`
	ServicePrincipalNames     []string `json:"servicePrincipalNames"`
	PreferredSingleSignOnMode string   `json:"preferredSingleSignOnMode"`
	ReplyURLs                 []string `json:"replyUrls"`
	AppRoleAssignmentRequired bool     `json:"appRoleAssignmentRequired"`
}

// SAMLEnterpriseApp is one SAML_APPS entry and the enterprise app Graph has for it (nil: none).
type SAMLEnterpriseApp struct {
	Config saml.Config
	SP     *SAMLServicePrincipal
}

// samlApps reads SAML_APPS from the handler's settings.
func (s *Snapshot) samlApps() ([]saml.Config, error) {
	v := strings.TrimSpace(s.Settings["SAML_APPS"])
	if v == "" {
		return nil, nil
	}
	return saml.ParseApps(v)
}

// samlEntityFilter is the Graph filter finding a service principal by Identifier; an Entity ID
// without a scheme is stored as typed (Entra adds "spn:" only when tokens are requested).
func samlEntityFilter(entityID string) string {
	id := strings.TrimPrefix(entityID, "spn:")
	return "servicePrincipalNames/any(n:n eq '" + strings.ReplaceAll(id, "'", "''") + "')"
}

// loadSAML reads each SAML application's enterprise app from Graph.
func (l *live) loadSAML(ctx context.Context, s *Snapshot) error {
	apps, err := s.samlApps()
	if err != nil || len(apps) == 0 {
		return nil // checkSAMLApps reports malformed settings
	}
	for _, c := range apps {
		var page struct {
			Value []SAMLServicePrincipal `json:"value"`
		}
		path := "/v1.0/servicePrincipals?$filter=" + url.QueryEscape(samlEntityFilter(c.EntityID))
		if err := l.graph.do(ctx, http.MethodGet, path, nil, &page); err != nil {
			if fatal(err) {
				return err
			}
			s.Absent["saml"] = "could not read: " + err.Error()
			return nil
		}
		e := SAMLEnterpriseApp{Config: c}
		if len(page.Value) > 0 {
			sp := page.Value[0]
			e.SP = &sp
		}
		s.SAML = append(s.SAML, e)
	}
	s.SAMLKnown = true
	return nil
}

func checkSAMLApps(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	apps, err := s.samlApps()
	if err != nil {
		return fail(s.appSettingsFix(`SAML_APPS='[{"name":"…","entityId":"…","tokenUrl":"https://…","apiBaseUrl":"https://…","clientId":"…","clientSecretName":"…"}]'`), "SAML_APPS: %s", err)
	}
	if len(apps) == 0 {
		return info("no SAML applications configured (SAML_APPS)")
	}
	if r, ok := s.need("saml", s.SAMLKnown); !ok {
		return r
	}
	var problems, fixes, notes []string
	for _, e := range s.SAML {
		c := e.Config
		if e.SP == nil {
			problems = append(problems, fmt.Sprintf("%s: no enterprise app has the Identifier (Entity ID) %q", c.Name, strings.TrimPrefix(c.EntityID, "spn:")))
			fixes = append(fixes, fmt.Sprintf("Entra admin center → Enterprise applications → the app for %s → Single sign-on (SAML) → Basic SAML Configuration: Identifier = %s", c.Name, strings.TrimPrefix(c.EntityID, "spn:")))
			continue
		}
		if !strings.EqualFold(e.SP.PreferredSingleSignOnMode, "saml") {
			problems = append(problems, fmt.Sprintf("%s: enterprise app %q uses single sign-on mode %q, not saml", c.Name, e.SP.DisplayName, e.SP.PreferredSingleSignOnMode))
			fixes = append(fixes, fmt.Sprintf("az rest --method PATCH --url %s/v1.0/servicePrincipals/%s --body '{\"preferredSingleSignOnMode\":\"saml\"}'", s.graphURL(), e.SP.ID))
		}
		first := ""
		for _, r := range e.SP.ReplyURLs {
			if !strings.Contains(r, "*") {
				first = r
				break
			}
		}
		if first != c.TokenURL {
			problems = append(problems, fmt.Sprintf("%s: the first reply URL of %q is %q, so assertions name it as Recipient; the application's token endpoint %s refuses them", c.Name, e.SP.DisplayName, first, c.TokenURL))
			fixes = append(fixes, fmt.Sprintf("Entra admin center → %s → Single sign-on → Basic SAML Configuration: make %s the first (default order) Reply URL", e.SP.DisplayName, c.TokenURL))
		}
		if s.GrantsKnown && !s.hasGrantTo(e.SP.ID) {
			problems = append(problems, fmt.Sprintf("%s: the bot has no consent for %q, so Entra refuses the assertion (AADSTS65001)", c.Name, e.SP.DisplayName))
			fixes = append(fixes, fmt.Sprintf("az ad app permission grant --id %s --api %s --scope user_impersonation   # or grant admin consent for the bot to %s in the Entra admin center", s.appID(), e.SP.AppID, e.SP.DisplayName))
		}
		if e.SP.AppRoleAssignmentRequired {
			notes = append(notes, fmt.Sprintf("%s: only users assigned to %q get an assertion", c.Name, e.SP.DisplayName))
		} else {
			notes = append(notes, fmt.Sprintf("%s: every user of the tenant gets an assertion for %q (assignment not required); the application's own authorizations decide", c.Name, e.SP.DisplayName))
		}
	}
	if len(problems) > 0 {
		return fail(strings.Join(fixes, "\n"), "%s", strings.Join(problems, "; "))
	}
	return pass("%s", strings.Join(notes, "; "))
}

func (s *Snapshot) hasGrantTo(resourceID string) bool {
	for _, g := range s.Grants {
		if strings.EqualFold(g.ResourceID, resourceID) {
			return true
		}
	}
	return false
}

func (s *Snapshot) graphURL() string {
	if s.GraphURL != "" {
		return strings.TrimRight(s.GraphURL, "/")
	}
	return DefaultGraphURL
}
