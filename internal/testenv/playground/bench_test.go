package playground

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkStart measures launching the Playground until it is ready and both
// UI streams are connected.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		p, err := launch(b.TempDir(), "http://127.0.0.1:1/api/messages", Options{})
		if p != nil {
			p.stop()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip measures one message typed in the Playground until the echo
// bot's reply shows in the chat.
func BenchmarkRoundTrip(b *testing.B) {
	bot := startEchoBot(b)
	p := Start(b, bot.endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	i := 0
	for b.Loop() {
		i++
		sent, err := p.Send(ctx, fmt.Sprint("ping ", i))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.WaitForReplyTo(ctx, sent.ActivityID); err != nil {
			b.Fatal(err)
		}
	}
}
