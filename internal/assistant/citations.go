package assistant

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/onbehalf/onbehalf/internal/mdtext"
)

// Teams citations (MicrosoftDocs/msteams-docs msteams-platform/bots/how-to/
// bot-messages-ai-generated-content.md, "Add citations"): one root entity of type
// https://schema.org/Message ("@type" Message, "@context" https://schema.org) whose citation
// array holds {"@type":"Claim", position, appearance {"@type":"DigitalDocument", name (at most
// 80 characters), url, abstract (at most 160)}}; the text refers to them as [position]; at
// most 20 per message; additionalType ["AIGeneratedContent"] shows the AI label.
const (
	maxCitations     = 20
	maxCitationName  = 80
	maxCitationAbstr = 160
)

type citationEntity struct {
	Type           string      `json:"type"`
	AtType         string      `json:"@type"`
	Context        string      `json:"@context"`
	AdditionalType []string    `json:"additionalType,omitempty"`
	Citation       []claimJSON `json:"citation"`
}

type claimJSON struct {
	Type       string         `json:"@type"`
	Position   int            `json:"position"`
	Appearance appearanceJSON `json:"appearance"`
}

type appearanceJSON struct {
	Type     string `json:"@type"`
	Name     string `json:"name"`
	URL      string `json:"url,omitempty"`
	Abstract string `json:"abstract,omitempty"`
}

// citations renders the sources of an answer: a Markdown line appended to the text (every
// client shows it) and the Teams citation entity. A source appears only when its URL is an
// https link to a host on the configured allow-list; its position stays the ref number the
// model was given, so "[2]" in the answer means the same document in both.
func (a *Assistant) citations(cs []Citation) (string, []json.RawMessage) {
	var claims []claimJSON
	var line []string
	for i, c := range cs {
		if len(claims) == maxCitations {
			break
		}
		if !hostAllowed(c.URL, a.LinkHosts) || strings.ContainsAny(c.URL, " \t\r\n()<>[]\"'`") {
			continue
		}
		// A title is index content: no URL of its own survives, and no markup.
		title, _ := SafeAnswer(c.Title, nil)
		title = clip(strings.Join(strings.Fields(title), " "), maxCitationName)
		if title == "" {
			title = fmt.Sprintf("Document %d", i+1)
		}
		abstract, _ := SafeAnswer(c.Excerpt, nil)
		claims = append(claims, claimJSON{Type: "Claim", Position: i + 1, Appearance: appearanceJSON{
			Type: "DigitalDocument", Name: title, URL: c.URL, Abstract: clip(strings.Join(strings.Fields(abstract), " "), maxCitationAbstr),
		}})
		line = append(line, fmt.Sprintf("[%d] [%s](%s)", i+1, mdtext.Escape(title), c.URL))
	}
	if len(claims) == 0 {
		return "", nil
	}
	ent, err := json.Marshal(citationEntity{
		Type: "https://schema.org/Message", AtType: "Message", Context: "https://schema.org",
		AdditionalType: []string{"AIGeneratedContent"}, Citation: claims,
	})
	if err != nil {
		return "", nil
	}
	return "\n\n**Sources:** " + strings.Join(line, " · "), []json.RawMessage{ent}
}
