package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext"
)

// cardWorld is a bot with spy commands: each records who ran it, where and with what.
type cardWorld struct {
	b       *bot.Bot
	rec     *recorder
	ran     []string
	signIns int
}

func newCardWorld() *cardWorld {
	w := &cardWorld{rec: &recorder{}}
	w.b = bot.New(w.rec, nil)
	spy := func(name string) func(context.Context, *bot.Turn, string) error {
		return func(ctx context.Context, t *bot.Turn, args string) error {
			w.ran = append(w.ran, fmt.Sprintf("%s|%s|%s|%s", name, args, t.Activity.From.ID, t.Activity.Conversation.ID))
			return t.ReplyText(ctx, mdtext.Markdown("ran "+name))
		}
	}
	w.b.Handle(bot.Command{Name: "jira mine", Run: spy("jira mine")})
	w.b.Handle(bot.Command{Name: "connect", Run: spy("connect")})
	w.b.Handle(bot.Command{Name: "status", Run: spy("status"), Shared: true})
	// A sign-in check that accepts only the token "good": anything else is answered instead of
	// running the action.
	w.b.ActionSignIn = func(ctx context.Context, t *bot.Turn, v *bot.ActionValue) *botframework.InvokeResponse {
		w.signIns++
		if v.Authentication != nil && v.Authentication.Token == "good" {
			return nil
		}
		return bot.ActionResponse(http.StatusUnauthorized, bot.ActionInvalidAuthCode, nil)
	}
	return w
}

func cardActivity(typ, convType string, value []byte, text string) *botframework.Activity {
	act := &botframework.Activity{Type: typ, ID: "act-1", ChannelID: "msteams", ServiceURL: "https://smba.trafficmanager.net/amer/",
		From:         botframework.ChannelAccount{ID: "29:ada", AADObjectID: "00000000-0000-4000-8000-0000000000ad"},
		Conversation: botframework.ConversationAccount{ID: "a:ada", ConversationType: convType}, Text: text}
	if len(value) > 0 {
		act.Value = json.RawMessage(value)
		if typ == botframework.TypeInvoke {
			act.Name = "adaptiveCard/action"
		}
	}
	return act
}

// FuzzCardInput fuzzes what an Adaptive Card sends back: the data of an Action.Submit (a
// message whose value carries {"command": …}) and the value of an Action.Execute
// (adaptiveCard/action invoke), in personal and shared conversations. Whatever the input:
//
//   - a button runs exactly what typing its command would — the same command with the same
//     arguments, the same replies — and nothing else;
//   - the command runs as the activity's sender in the activity's conversation, whatever the
//     value claims;
//   - an Action.Execute answers HTTP 200 with an adaptiveCard/action body; one that is not an
//     Action.Execute of the bot's verb with a command runs nothing (400 in the body);
//   - an Action.Execute carrying a sign-in runs its command only when the sign-in check
//     accepts it.
func FuzzCardInput(f *testing.F) {
	for _, s := range []struct {
		execute  bool
		convType string
		value    string
		text     string
	}{
		{false, "personal", `{"command":"jira mine"}`, ""},
		{false, "personal", `{"command":"  JIRA   mine  extra words "}`, ""},
		{false, "groupChat", `{"command":"jira mine"}`, ""},
		{false, "groupChat", `{"command":"status"}`, ""},
		{false, "personal", `{"command":"jira mine","from":{"id":"29:eve"}}`, ""},
		{false, "personal", `{"command":"jira mine"}`, "status"},
		{false, "personal", `{"command":"<at>bot</at> connect jira"}`, ""},
		{false, "personal", `{"command":["jira mine"]}`, ""},
		{false, "personal", `{"Command":"connect x"}`, ""},
		{false, "personal", `"jira mine"`, ""},
		{false, "personal", `{"command":"unknown thing"}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"command","data":{"command":"jira mine"}}}`, ""},
		{true, "channel", `{"action":{"type":"Action.Execute","verb":"command","data":{"command":"jira mine"}}}`, ""},
		{true, "personal", `{"action":{"type":"Action.Submit","verb":"command","data":{"command":"jira mine"}}}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"other","data":{"command":"jira mine"}}}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"command","data":{"command":""}}}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"command","data":"jira mine"}}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"command","data":{"command":"connect acme"}},"authentication":{"id":"x","connectionName":"sso","token":"good"}}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"command","data":{"command":"connect acme"}},"authentication":{"id":"x","connectionName":"sso","token":"forged"}}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"command","data":{"command":"connect acme"}},"state":"12345678"}`, ""},
		{true, "personal", `{"action":{"type":"Action.Execute","verb":"command","data":{"command":"jira mine"}},"authentication":null,"state":""}`, ""},
		{true, "personal", `[]`, ""}, {true, "personal", `null`, ""}, {true, "personal", `{"action":1}`, ""},
	} {
		f.Add(s.execute, s.convType, []byte(s.value), s.text)
	}
	f.Fuzz(func(t *testing.T, execute bool, convType string, value []byte, text string) {
		if !json.Valid(value) {
			return // the messaging endpoint refuses an activity whose JSON is not valid
		}
		// What the button does.
		w := newCardWorld()
		typ := botframework.TypeMessage
		if execute {
			typ = botframework.TypeInvoke
			text = ""
		}
		act := cardActivity(typ, convType, value, text)
		resp, _, err := w.b.OnActivity(context.Background(), act)
		if err != nil {
			t.Fatalf("OnActivity: %v", err)
		}
		for _, r := range w.ran {
			if !strings.HasSuffix(r, "|29:ada|a:ada") {
				t.Fatalf("a command ran as someone else or elsewhere: %s", r)
			}
		}

		// What typing the command would do (decoded here without the bot's helpers).
		var command string
		runs := true
		if execute {
			var v struct {
				Action struct {
					Type string          `json:"type"`
					Verb string          `json:"verb"`
					Data json.RawMessage `json:"data"`
				} `json:"action"`
				Authentication *struct {
					Token string `json:"token"`
				} `json:"authentication"`
				State string `json:"state"`
			}
			verr := json.Unmarshal(value, &v)
			var data struct {
				Command string `json:"command"`
			}
			_ = json.Unmarshal(v.Action.Data, &data)
			command = strings.TrimSpace(data.Command)
			if resp == nil || resp.Status != http.StatusOK {
				t.Fatalf("Action.Execute answered %+v, want HTTP 200", resp)
			}
			body, _ := resp.Body.(map[string]any)
			if verr != nil || v.Action.Type != "Action.Execute" || v.Action.Verb != bot.ExecuteVerb || command == "" {
				if body["statusCode"] != http.StatusBadRequest || len(w.ran) != 0 {
					t.Fatalf("a malformed action answered %v and ran %q", body, w.ran)
				}
				return
			}
			if v.Authentication != nil || v.State != "" {
				if w.signIns != 1 {
					t.Fatalf("an action carrying a sign-in was run without the sign-in check")
				}
				if v.Authentication == nil || v.Authentication.Token != "good" {
					runs = false
				}
			}
		} else {
			command = bot.CommandText(act)
			if command == "" {
				var v struct {
					Command string `json:"command"`
				}
				if json.Unmarshal(value, &v) == nil {
					command = strings.TrimSpace(v.Command)
				}
			}
		}
		if !runs || command == "" {
			if len(w.ran) != 0 {
				t.Fatalf("ran %q for a refused or empty action", w.ran)
			}
			return
		}
		if strings.Contains(strings.ToLower(command), "<at") {
			return // typed words lose their @-mentions; a button's data has none to lose
		}
		typed := newCardWorld()
		if _, _, err := typed.b.OnActivity(context.Background(), cardActivity(botframework.TypeMessage, convType, nil, command)); err != nil {
			t.Fatalf("typed: %v", err)
		}
		if strings.Join(w.ran, "\n") != strings.Join(typed.ran, "\n") {
			t.Fatalf("the button ran %q, typing %q ran %q", w.ran, command, typed.ran)
		}
		if !execute && len(w.rec.sent) != len(typed.rec.sent) {
			t.Fatalf("the button got %d replies, typing %q got %d", len(w.rec.sent), command, len(typed.rec.sent))
		}
	})
}
