package config

import (
	"net/url"
	"regexp"
	"strings"
)

// DefaultSearchAPIVersion is the Azure AI Search data-plane api-version used when
// AZURE_SEARCH_API_VERSION is empty: the preview version whose query-time ACL enforcement
// never returns permission-filtered documents without the user's token
// (learn.microsoft.com azure/search/search-query-access-control-rbac-enforcement).
const DefaultSearchAPIVersion = "2025-11-01-preview"

// SearchResourceName is the name under which the user's Azure AI Search token is obtained
// and stored (an Entra resource like "graph"); ENTRA_APIS may not use it.
const SearchResourceName = "search"

// Search holds the settings of the assistant's knowledge base: an Azure AI Search index with
// document-level access control, queried with the user's own Entra token. It is off without
// an endpoint. The managed identity needs the "Search Index Data Reader" role on the service,
// and the bot's app registration the delegated permission user_impersonation of Azure AI
// Search (https://search.azure.com), consented like its Graph permissions.
//
//	AZURE_SEARCH_ENDPOINT=https://contoso-kb.search.windows.net
//	AZURE_SEARCH_INDEX=handbook
//	AZURE_SEARCH_API_VERSION=2025-11-01-preview
//	AZURE_SEARCH_FIELDS=title url content
//	ASSISTANT_LINK_HOSTS=contoso.sharepoint.com
type Search struct {
	// Endpoint is the search service endpoint (AZURE_SEARCH_ENDPOINT).
	Endpoint string
	// Index is the index name (AZURE_SEARCH_INDEX).
	Index string
	// APIVersion is the data-plane api-version (AZURE_SEARCH_API_VERSION, default
	// DefaultSearchAPIVersion); it must be a preview version from 2025-11-01 on.
	APIVersion string
	// TitleField, URLField and ContentField name the index fields read for a result
	// (AZURE_SEARCH_FIELDS, three names, default "title url content"). Permission fields are
	// never read.
	TitleField, URLField, ContentField string
}

// Configured reports whether the knowledge base is on.
func (s Search) Configured() bool { return s.Endpoint != "" }

var (
	searchIndexRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)
	searchVersionRE = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})-preview$`)
	searchFieldRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$`)
)

// search reads the knowledge base's settings.
func (r *reader) search() Search {
	s := Search{
		Endpoint:   r.httpsURL("AZURE_SEARCH_ENDPOINT", "", true),
		Index:      r.str("AZURE_SEARCH_INDEX"),
		APIVersion: r.strDefault("AZURE_SEARCH_API_VERSION", DefaultSearchAPIVersion),
	}
	if s.Endpoint != "" {
		if u, _ := url.Parse(s.Endpoint); u != nil && (u.RawQuery != "" || strings.Trim(u.Path, "/") != "") {
			r.fail("AZURE_SEARCH_ENDPOINT", "must be the service endpoint only (https://<service>.search.windows.net), without a path or query")
			s.Endpoint = ""
		}
	}
	switch {
	case s.Endpoint != "" && s.Index == "":
		r.fail("AZURE_SEARCH_INDEX", "required with AZURE_SEARCH_ENDPOINT: the name of the index")
	case s.Index != "" && !searchIndexRE.MatchString(s.Index):
		r.fail("AZURE_SEARCH_INDEX", "must be an index name (lower-case letters, digits and '-')")
	case s.Index != "" && s.Endpoint == "" && !r.bad["AZURE_SEARCH_ENDPOINT"]:
		r.fail("AZURE_SEARCH_ENDPOINT", "required with AZURE_SEARCH_INDEX")
	}
	// Earlier previews returned every document when the user's token was missing; GA versions
	// have no query-time ACL enforcement at all.
	if m := searchVersionRE.FindStringSubmatch(s.APIVersion); m == nil || m[1] < "2025-11-01" {
		r.fail("AZURE_SEARCH_API_VERSION", "must be a preview api-version with query-time access control, "+DefaultSearchAPIVersion+" or later")
	}
	fields := strings.Fields(r.strDefault("AZURE_SEARCH_FIELDS", "title url content"))
	if len(fields) != 3 || !searchFieldRE.MatchString(fields[0]) || !searchFieldRE.MatchString(fields[1]) || !searchFieldRE.MatchString(fields[2]) {
		r.fail("AZURE_SEARCH_FIELDS", "must be three field names separated by spaces: title, url and content")
	} else {
		s.TitleField, s.URLField, s.ContentField = fields[0], fields[1], fields[2]
	}
	return s
}
