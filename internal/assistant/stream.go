package assistant

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext"
)

// StreamingModel can stream an answer given without tools; onText receives the answer so far.
type StreamingModel interface {
	Model
	CompleteStream(ctx context.Context, msgs []Message, onText func(sofar string)) (Message, error)
}

// Teams streaming (msteams-docs msteams-platform/bots/streaming-ux.md, "Stream message through
// REST API"): typing activities carrying a streaminfo entity — the first with streamSequence 1
// and no streamId, whose response id is the streamId; then streamId and increasing
// streamSequence; streamType "informative" for progress text, "streaming" for the answer so
// far (each update extends the previous one); the end is a message activity with streamType
// "final" and no streamSequence. Streaming is for one-to-one chats only; Microsoft asks for
// at most about one update per second and a stream finished within two minutes.

// MinStreamInterval is the least time between two streaming updates.
const MinStreamInterval = time.Second

type streamInfo struct {
	Type           string `json:"type"`
	StreamID       string `json:"streamId,omitempty"`
	StreamType     string `json:"streamType"`
	StreamSequence int    `json:"streamSequence,omitempty"`
}

// stream is one turn's streamed answer; the zero value (off) sends the final text as a plain reply.
type stream struct {
	t    *bot.Turn
	on   bool
	id   string
	seq  int
	last time.Time
	sent string
	now  func() time.Time
}

func (s *stream) send(ctx context.Context, typ, text string, info streamInfo, more ...json.RawMessage) error {
	ent, _ := json.Marshal(info)
	id, err := s.t.Sender().Send(ctx, s.t.Reference(), &botframework.Activity{Type: typ, Text: text, Entities: append([]json.RawMessage{ent}, more...)})
	if err == nil && s.id == "" {
		s.id = id
	}
	return err
}

// informative starts the stream with a progress line; on failure streaming stays off.
func (s *stream) informative(ctx context.Context, text string) {
	if !s.on || (s.id != "" && s.now().Sub(s.last) < MinStreamInterval) {
		return // a later update will do; the first one always goes
	}
	s.seq++
	if err := s.send(ctx, botframework.TypeTyping, text, streamInfo{Type: "streaminfo", StreamID: s.id, StreamType: "informative", StreamSequence: s.seq}); err != nil || s.id == "" {
		s.on = false
	}
	s.last = s.now()
}

// chunk sends the safe part of the answer so far, at most once per MinStreamInterval, and
// only when it extends what was sent (a link still being written is held back).
func (s *stream) chunk(ctx context.Context, sofar string, hosts []string) {
	if !s.on || s.id == "" || s.now().Sub(s.last) < MinStreamInterval {
		return
	}
	if i := strings.LastIndexAny(sofar, " \n"); i >= 0 {
		sofar = sofar[:i]
	} else {
		return
	}
	safe, _ := SafeAnswer(sofar, hosts)
	if safe == "" || safe == s.sent || !strings.HasPrefix(safe, s.sent) {
		return
	}
	s.seq++
	if err := s.send(ctx, botframework.TypeTyping, safe, streamInfo{Type: "streaminfo", StreamID: s.id, StreamType: "streaming", StreamSequence: s.seq}); err != nil {
		s.on = false // the final message still comes
		return
	}
	s.sent, s.last = safe, s.now()
}

// final ends the stream with the whole answer, or sends it as a plain reply. text is the
// bot's own sentence or the model's Markdown after SafeAnswer (no HTML, no images, links
// only to allowed hosts).
// Entities (citations) go with the final message only.
func (s *stream) final(ctx context.Context, text string, entities ...json.RawMessage) error {
	if s.id == "" {
		return s.t.Reply(ctx, &botframework.Activity{Type: botframework.TypeMessage, Text: string(mdtext.Markdown(text)), Entities: entities})
	}
	return s.send(ctx, botframework.TypeMessage, text, streamInfo{Type: "streaminfo", StreamID: s.id, StreamType: "final"}, entities...)
}
