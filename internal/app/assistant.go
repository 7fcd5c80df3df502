package app

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/config"
)

// registerAssistant makes the assistant answer free text, with the tools the wired
// connectors contributed. Without AZURE_OPENAI_ENDPOINT it does nothing, and free text keeps
// the bot's built-in answer.
func (a *App) registerAssistant(cfg *config.Config, opts Options) error {
	if !cfg.Assistant.Configured() {
		return nil
	}
	cred := opts.ModelCredential
	if cred == nil {
		// The managed identity's own token for Cognitive Services: no API key exists anywhere.
		mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ID: azidentity.ClientID(cfg.ManagedIdentityClientID), ClientOptions: azcore.ClientOptions{Transport: opts.HTTPClient},
		})
		if err != nil {
			return fmt.Errorf("managed identity: %w", err)
		}
		cred = mi
	}
	model, err := assistant.NewAzure(assistant.AzureConfig{
		Endpoint: cfg.Assistant.Endpoint, Deployment: cfg.Assistant.Deployment, APIVersion: cfg.Assistant.APIVersion,
		Credential: cred, HTTPClient: opts.HTTPClient,
	})
	if err != nil {
		return err
	}
	a.Assistant = &assistant.Assistant{Model: model, Tools: a.tools, LinkHosts: cfg.Assistant.LinkHosts, Log: opts.Log, Now: opts.Now}
	a.Bot.Fallback = a.Assistant.Answer
	return nil
}
