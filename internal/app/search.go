package app

import (
	"errors"

	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/aisearch"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// searchResource is the user's Azure AI Search token as single sign-on obtains it: OBO for
// Search's delegated user_impersonation permission.
func searchResource() sso.Resource {
	return sso.Resource{Name: config.SearchResourceName, Display: "the knowledge base", BaseURL: aisearch.Audience, Scopes: []string{aisearch.UserScope}}
}

// registerSearch adds the knowledge_search tool: the index is queried by the managed identity
// (a data-plane role, no key) with the asking user's own Search token, so it returns only the
// documents that user may read. Without AZURE_SEARCH_ENDPOINT it does nothing.
func (a *App) registerSearch(cfg *config.Config, opts Options) error {
	if !cfg.Search.Configured() {
		return nil
	}
	if a.SSO == nil {
		return errors.New("AZURE_SEARCH_ENDPOINT needs single sign-on (a bot identity and a token store): every search carries the user's own token")
	}
	mi, err := managedIdentity(cfg, opts)
	if err != nil {
		return err
	}
	c, err := aisearch.New(aisearch.Config{
		Endpoint: cfg.Search.Endpoint, Index: cfg.Search.Index, APIVersion: cfg.Search.APIVersion,
		Fields:     aisearch.Fields{Title: cfg.Search.TitleField, URL: cfg.Search.URLField, Content: cfg.Search.ContentField},
		Credential: mi, HTTPClient: opts.HTTPClient,
	})
	if err != nil {
		return err
	}
	a.tools = append(a.tools, assistant.KnowledgeTool(c, a.SSO, config.SearchResourceName))
	return nil
}
