package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The assistant's model (AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_DEPLOYMENT): in live mode the
// doctor finds the Cognitive Services account in the resource group whose endpoint the
// handler uses, its deployment, and the role assignments on it. The handler's managed
// identity can always get an Entra token for https://cognitiveservices.azure.com; what makes
// the model accept that token is the data-plane role Cognitive Services OpenAI User on the
// account (learn.microsoft.com azure/role-based-access-control/built-in-roles/ai-machine-learning).

// CognitiveServicesAPIVersion is the Resource Manager api-version used for model accounts.
const CognitiveServicesAPIVersion = "2024-10-01"

// OpenAIUserRole is the built-in role Cognitive Services OpenAI User (inference, no keys).
const OpenAIUserRole = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"

// ModelAccount is the assistant's model account as Resource Manager shows it.
type ModelAccount struct {
	ID               string
	Endpoint         string
	DisableLocalAuth bool
	// DeploymentFound says the deployment AZURE_OPENAI_DEPLOYMENT names exists on it.
	DeploymentFound bool
	// Roles are the role assignments at (and above) the account.
	Roles []RoleAssignment
}

// sameEndpoint compares two endpoints by scheme and host.
func sameEndpoint(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimSpace(a))
	ub, err2 := url.Parse(strings.TrimSpace(b))
	return err1 == nil && err2 == nil && ua.Host != "" && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// loadModel reads the model account named by the settings' endpoint, if the assistant is on.
func (l *live) loadModel(ctx context.Context, s *Snapshot, unread func(string, error) error) error {
	endpoint := s.Settings["AZURE_OPENAI_ENDPOINT"]
	if endpoint == "" {
		return nil
	}
	var page struct {
		Value []struct {
			ID         string `json:"id"`
			Properties struct {
				Endpoint         string `json:"endpoint"`
				DisableLocalAuth bool   `json:"disableLocalAuth"`
			} `json:"properties"`
		} `json:"value"`
	}
	if err := l.arm.do(ctx, http.MethodGet, l.rgPath()+"/providers/Microsoft.CognitiveServices/accounts?api-version="+CognitiveServicesAPIVersion, nil, &page); err != nil {
		return unread("model", err)
	}
	for _, a := range page.Value {
		if !sameEndpoint(a.Properties.Endpoint, endpoint) {
			continue
		}
		m := &ModelAccount{ID: a.ID, Endpoint: a.Properties.Endpoint, DisableLocalAuth: a.Properties.DisableLocalAuth}
		var dep map[string]any
		switch err := l.arm.do(ctx, http.MethodGet, a.ID+"/deployments/"+url.PathEscape(s.Settings["AZURE_OPENAI_DEPLOYMENT"])+"?api-version="+CognitiveServicesAPIVersion, nil, &dep); {
		case err == nil:
			m.DeploymentFound = true
		case !isNotFound(err):
			return unread("model", err)
		}
		roles, err := l.rolesAt(ctx, a.ID)
		if err != nil {
			return unread("model", err)
		}
		m.Roles = roles
		s.Model = m
		return nil
	}
	s.Absent["model"] = fmt.Sprintf("no Cognitive Services account in resource group %s has the endpoint %s (an account elsewhere: check its deployment and role assignments there)", l.cfg.ResourceGroup, endpoint)
	return nil
}

// rolesAt lists the role assignments at scope and above it.
func (l *live) rolesAt(ctx context.Context, scope string) ([]RoleAssignment, error) {
	var page struct {
		Value []struct {
			Properties struct {
				Scope            string `json:"scope"`
				RoleDefinitionID string `json:"roleDefinitionId"`
				PrincipalID      string `json:"principalId"`
			} `json:"properties"`
		} `json:"value"`
	}
	path := scope + "/providers/Microsoft.Authorization/roleAssignments?api-version=" + AuthorizationAPIVersion + "&$filter=" + url.QueryEscape("atScope()")
	if err := l.arm.do(ctx, http.MethodGet, path, nil, &page); err != nil {
		return nil, err
	}
	out := make([]RoleAssignment, 0, len(page.Value))
	for _, v := range page.Value {
		p := v.Properties
		out = append(out, RoleAssignment{Scope: p.Scope, RoleDefinitionID: p.RoleDefinitionID, PrincipalID: p.PrincipalID})
	}
	return out, nil
}

// checkAssistantModel shows the model the assistant uses and whether the handler's managed
// identity may call it: the deployment exists, the identity holds Cognitive Services OpenAI
// User on the account (so the model accepts its Entra token), and keys are off.
func checkAssistantModel(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	endpoint, deployment := s.Settings["AZURE_OPENAI_ENDPOINT"], s.Settings["AZURE_OPENAI_DEPLOYMENT"]
	if endpoint == "" {
		return info("the assistant is off (no AZURE_OPENAI_ENDPOINT): free text gets the built-in answer")
	}
	version := s.Settings["AZURE_OPENAI_API_VERSION"]
	if version == "" {
		version = "the handler's default"
	}
	what := fmt.Sprintf("endpoint %s, deployment %q, api-version %s", endpoint, deployment, version)
	if deployment == "" {
		return fail(s.appSettingsFix("AZURE_OPENAI_DEPLOYMENT=<deployment name>"), "%s: AZURE_OPENAI_DEPLOYMENT is missing", what)
	}
	if s.Model == nil {
		return info("%s; the account was not checked: %s", what, s.absent("model"))
	}
	m := s.Model
	if !m.DeploymentFound {
		return fail("azd provision   # with ASSISTANT_MODEL=create; or: az cognitiveservices account deployment create --ids "+m.ID+" --deployment-name "+deployment+" …",
			"%s: the account %s has no deployment %q, so every question fails", what, m.ID, deployment)
	}
	if r, ok := s.need("identity", s.Identity != nil && s.Identity.PrincipalID != ""); !ok {
		return info("%s; the identity's role was not checked: %s", what, r.Detail)
	}
	var user string
	var others []string
	for _, ra := range m.Roles {
		if !strings.EqualFold(ra.PrincipalID, s.Identity.PrincipalID) {
			continue
		}
		role := strings.ToLower(ra.RoleDefinitionID[strings.LastIndex(ra.RoleDefinitionID, "/")+1:])
		if role == OpenAIUserRole {
			user = ra.Scope
		} else {
			others = append(others, role+" at "+ra.Scope)
		}
	}
	if user == "" {
		return fail("az role assignment create --assignee-object-id "+s.Identity.PrincipalID+" --assignee-principal-type ServicePrincipal --role "+OpenAIUserRole+" --scope "+m.ID,
			"%s: the managed identity (principal %s) has no Cognitive Services OpenAI User role on %s, so the model refuses its token (403) and every question fails", what, s.Identity.PrincipalID, m.ID)
	}
	if !m.DisableLocalAuth {
		return warn("az resource update --ids "+m.ID+" --set properties.disableLocalAuth=true",
			"%s: keys are enabled on the account; onbehalf never uses one, so turn them off", what)
	}
	if len(others) > 0 {
		return warn("az role assignment list --assignee "+s.Identity.PrincipalID+" --scope "+m.ID+"   # then delete the extra assignments",
			"%s: besides Cognitive Services OpenAI User the managed identity holds %s on the account: more than the assistant needs", what, strings.Join(others, ", "))
	}
	return pass("%s; the managed identity holds Cognitive Services OpenAI User at %s, so the model accepts its Entra token; keys are off", what, user)
}
