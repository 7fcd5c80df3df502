package app

import (
	"fmt"

	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/sso"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
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
		mi, err := managedIdentity(cfg, opts)
		if err != nil {
			return err
		}
		cred = mi
	}
	if err := a.registerSearch(cfg, opts); err != nil {
		return fmt.Errorf("knowledge base: %w", err)
	}
	model, err := assistant.NewAzure(assistant.AzureConfig{
		Endpoint: cfg.Assistant.Endpoint, Deployment: cfg.Assistant.Deployment, APIVersion: cfg.Assistant.APIVersion,
		Credential: cred, HTTPClient: opts.HTTPClient,
	})
	if err != nil {
		return err
	}
	a.Assistant = &assistant.Assistant{Model: model, Tools: a.tools, LinkHosts: cfg.Assistant.LinkHosts, Log: opts.Log, Now: opts.Now, Stream: true}
	if user := a.userOf(cfg); a.Store != nil && user != nil {
		a.Assistant.Memory = &assistant.StoreMemory{Store: a.Store, User: user, Now: opts.Now}
	}
	a.Bot.Fallback = a.Assistant.Answer
	a.Bot.Handle(bot.Command{Name: "forget", Usage: "forget", Shared: true,
		Help: "Make the assistant forget our conversation here.", Run: a.Assistant.Forget})
	return nil
}

// userOf keys a turn's user from authenticated input: the OAuth connectors' rule (which also
// covers local anonymous mode) or, without them, the Entra identity of the activity.
func (a *App) userOf(cfg *config.Config) func(*botframework.Activity) (tokenstore.UserKey, error) {
	switch {
	case a.OAuth != nil:
		return a.OAuth.UserOf
	case !cfg.Anonymous:
		return func(act *botframework.Activity) (tokenstore.UserKey, error) {
			c, err := sso.CallerOf(act, cfg.TenantID)
			return c.User, err
		}
	default:
		return nil
	}
}
