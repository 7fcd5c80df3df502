// Package botframework speaks the Bot Framework channel protocol: the activity schema subset
// the bot uses, validation of the channel's inbound bearer tokens, and the connector client
// that sends replies back to the channel.
//
// Sources: Bot Framework REST API reference (bot-docs rest-api/bot-framework-rest-connector-api-reference.md,
// bot-framework-rest-connector-authentication.md) and the activity schema
// (microsoft/botframework-sdk specs/botframework-activity/botframework-activity.md).
package botframework

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Activity types used by the bot.
const (
	TypeMessage            = "message"
	TypeConversationUpdate = "conversationUpdate"
	TypeInvoke             = "invoke"
	TypeInvokeResponse     = "invokeResponse"
	TypeTyping             = "typing"
	TypeEvent              = "event"
	TypeInstallation       = "installationUpdate"
)

// Activity is the subset of the Bot Framework activity schema the bot reads and writes.
type Activity struct {
	Type         string              `json:"type"`
	ID           string              `json:"id,omitempty"`
	Timestamp    string              `json:"timestamp,omitempty"`
	ServiceURL   string              `json:"serviceUrl,omitempty"`
	ChannelID    string              `json:"channelId,omitempty"`
	From         ChannelAccount      `json:"from"`
	Conversation ConversationAccount `json:"conversation"`
	Recipient    ChannelAccount      `json:"recipient"`
	Text         string              `json:"text,omitempty"`
	TextFormat   string              `json:"textFormat,omitempty"`
	Locale       string              `json:"locale,omitempty"`
	ReplyToID    string              `json:"replyToId,omitempty"`
	Name         string              `json:"name,omitempty"`
	Value        json.RawMessage     `json:"value,omitempty"`
	MembersAdded []ChannelAccount    `json:"membersAdded,omitempty"`
	// MembersRemoved and Action tell of the bot leaving: a conversationUpdate naming the bot
	// in membersRemoved, an installationUpdate with action "remove" (or "remove-upgrade")
	// (botframework-sdk specs/botframework-activity/botframework-activity.md; msteams-docs
	// bots/how-to/conversations/subscribe-to-conversation-events.md).
	MembersRemoved []ChannelAccount  `json:"membersRemoved,omitempty"`
	Action         string            `json:"action,omitempty"`
	Attachments    []Attachment      `json:"attachments,omitempty"`
	ChannelData    json.RawMessage   `json:"channelData,omitempty"`
	Entities       []json.RawMessage `json:"entities,omitempty"`

	// Targeted sends the activity as a Teams targeted message: in a group chat or channel only
	// its Recipient sees it (msteams-docs agents-in-teams/targeted-messages.md, public developer
	// preview: the connector request carries ?isTargetedActivity=true and the activity names
	// the recipient). It is not part of the activity's JSON.
	Targeted bool `json:"-"`
}

// ChannelAccount identifies a user or bot on a channel.
type ChannelAccount struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	AADObjectID string `json:"aadObjectId,omitempty"`
	Role        string `json:"role,omitempty"`
}

// ConversationAccount identifies a conversation.
type ConversationAccount struct {
	ID               string `json:"id"`
	Name             string `json:"name,omitempty"`
	ConversationType string `json:"conversationType,omitempty"`
	TenantID         string `json:"tenantId,omitempty"`
	IsGroup          bool   `json:"isGroup,omitempty"`
}

// Attachment is a card or file attached to an activity.
type Attachment struct {
	ContentType string `json:"contentType"`
	Content     any    `json:"content,omitempty"`
	ContentURL  string `json:"contentUrl,omitempty"`
	Name        string `json:"name,omitempty"`
}

// InvokeResponse is the synchronous answer to an invoke activity: the HTTP status and body the
// bot returns on the channel's request.
type InvokeResponse struct {
	Status int
	Body   any
}

// ConversationReference is what the bot needs to message a conversation later (proactively).
type ConversationReference struct {
	ServiceURL   string              `json:"serviceUrl"`
	ChannelID    string              `json:"channelId"`
	Conversation ConversationAccount `json:"conversation"`
	Bot          ChannelAccount      `json:"bot"`
	User         ChannelAccount      `json:"user"`
	ActivityID   string              `json:"activityId,omitempty"`
	TenantID     string              `json:"tenantId,omitempty"`
}

// Reference returns the conversation reference of an inbound activity.
func (a *Activity) Reference() ConversationReference {
	return ConversationReference{
		ServiceURL:   a.ServiceURL,
		ChannelID:    a.ChannelID,
		Conversation: a.Conversation,
		Bot:          a.Recipient,
		User:         a.From,
		ActivityID:   a.ID,
		TenantID:     a.Conversation.TenantID,
	}
}

// ErrMalformedActivity reports an activity that lacks what the protocol requires.
var ErrMalformedActivity = errors.New("malformed activity")

// Validate checks the fields every inbound activity must carry before the bot acts on it.
func (a *Activity) Validate() error {
	var missing []string
	if a.Type == "" {
		missing = append(missing, "type")
	}
	if a.ServiceURL == "" {
		missing = append(missing, "serviceUrl")
	}
	if a.ChannelID == "" {
		missing = append(missing, "channelId")
	}
	if a.Conversation.ID == "" {
		missing = append(missing, "conversation.id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrMalformedActivity, strings.Join(missing, ", "))
	}
	// The shape every channel's serviceUrl has; whether http is acceptable (loopback, local
	// development only) is the caller's decision.
	return CheckServiceURL(a.ServiceURL, true)
}

// BaseChannel is the channel part of a channel id. Hosts inside a channel send a composite id,
// "{channel}:{product}" — Microsoft 365 Copilot sends "msteams:COPILOT" — while the Bot Service
// token store partitions users' tokens by the base channel and its sign-in page completes
// silently only for the base channel "msteams" (Agents-for-net PR #232 "Activity.ChannelId
// supports subchannels" and issues #827, #853; Agents-for-python PR #457). Every call to the
// token service, and the signing key's endorsements, use this value.
func BaseChannel(channelID string) string {
	base, _, _ := strings.Cut(channelID, ":")
	return base
}

// BaseChannelID is BaseChannel of the activity's channel id.
func (a *Activity) BaseChannelID() string { return BaseChannel(a.ChannelID) }

// IsSignedInTeamsUser reports whether the activity carries the Entra identity of its sender.
func (a *Activity) IsSignedInTeamsUser() bool { return a.From.AADObjectID != "" }
