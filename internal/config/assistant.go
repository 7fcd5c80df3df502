package config

import (
	"net/url"
	"regexp"
	"strings"
)

// DefaultOpenAIAPIVersion is the Azure OpenAI data-plane API version used when
// AZURE_OPENAI_API_VERSION is empty: a generally available inference version
// (learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle).
const DefaultOpenAIAPIVersion = "2024-10-21"

// Assistant holds the settings of the LLM assistant that answers free text. It is off
// without an endpoint; then free text gets the bot's built-in answer.
//
// In Azure (the managed identity holds the "Cognitive Services OpenAI User" role on the resource):
//
//	AZURE_OPENAI_ENDPOINT=https://aoai-onbehalf.openai.azure.com
//	AZURE_OPENAI_DEPLOYMENT=gpt-4o-mini
//	AZURE_OPENAI_API_VERSION=2024-10-21
//	ASSISTANT_LINK_HOSTS=contoso.atlassian.net contoso.sharepoint.com
type Assistant struct {
	// Endpoint is the Azure OpenAI / AI Foundry resource endpoint (AZURE_OPENAI_ENDPOINT).
	Endpoint string
	// Deployment is the model deployment's name (AZURE_OPENAI_DEPLOYMENT).
	Deployment string
	// APIVersion is the data-plane api-version (AZURE_OPENAI_API_VERSION, default
	// DefaultOpenAIAPIVersion).
	APIVersion string
	// LinkHosts are host names, besides the connectors' own, that answers may link to
	// (ASSISTANT_LINK_HOSTS, space-separated). Links to any other host are removed.
	LinkHosts []string
}

// Configured reports whether the assistant is on.
func (a Assistant) Configured() bool { return a.Endpoint != "" }

var (
	apiVersionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`)
	deploymentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	hostRE       = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// assistant reads the assistant's settings.
func (r *reader) assistant() Assistant {
	a := Assistant{
		Endpoint:   r.httpsURL("AZURE_OPENAI_ENDPOINT", "", true),
		Deployment: r.str("AZURE_OPENAI_DEPLOYMENT"),
		APIVersion: r.strDefault("AZURE_OPENAI_API_VERSION", DefaultOpenAIAPIVersion),
	}
	if a.Endpoint != "" {
		if u, _ := url.Parse(a.Endpoint); u != nil && (u.RawQuery != "" || strings.Trim(u.Path, "/") != "") {
			r.fail("AZURE_OPENAI_ENDPOINT", "must be the resource endpoint only (https://<resource>.openai.azure.com), without a path or query")
			a.Endpoint = ""
		}
	}
	switch {
	case a.Endpoint != "" && a.Deployment == "":
		r.fail("AZURE_OPENAI_DEPLOYMENT", "required with AZURE_OPENAI_ENDPOINT: the name of the model deployment")
	case a.Deployment != "" && !deploymentRE.MatchString(a.Deployment):
		r.fail("AZURE_OPENAI_DEPLOYMENT", "must be a deployment name (letters, digits, '.', '_' or '-')")
	case a.Deployment != "" && a.Endpoint == "" && !r.bad["AZURE_OPENAI_ENDPOINT"]:
		r.fail("AZURE_OPENAI_ENDPOINT", "required with AZURE_OPENAI_DEPLOYMENT")
	}
	if !apiVersionRE.MatchString(a.APIVersion) {
		r.fail("AZURE_OPENAI_API_VERSION", "must be an api-version such as "+DefaultOpenAIAPIVersion+" (YYYY-MM-DD, optionally -preview)")
	}
	for _, h := range strings.Fields(strings.ToLower(r.str("ASSISTANT_LINK_HOSTS"))) {
		if !hostRE.MatchString(h) {
			r.fail("ASSISTANT_LINK_HOSTS", "must be space-separated host names (optionally *.domain), not URLs: "+h)
			continue
		}
		a.LinkHosts = append(a.LinkHosts, h)
	}
	return a
}
