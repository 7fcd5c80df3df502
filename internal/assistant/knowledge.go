package assistant

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/connector/aisearch"
	"github.com/onbehalf/onbehalf/internal/connector/graph"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// Knowledge-base bounds: results per search and characters of each excerpt the model reads.
const (
	knowledgeTop     = 5
	knowledgeExcerpt = 400
)

// KnowledgeSearcher is what the knowledge_search tool needs: aisearch.Client.
type KnowledgeSearcher interface {
	Search(ctx context.Context, userToken, text string, top int) ([]aisearch.Document, error)
}

var _ KnowledgeSearcher = (*aisearch.Client)(nil)

// KnowledgeTool returns the knowledge_search tool. It gets the turn user's own Search token
// exactly as the Microsoft 365 tools get theirs (tokens.Need, which starts Teams SSO when
// needed, under the resource name resource) and searches with it, so the index returns only
// what that user may read. Each result becomes a citation; the answer links to it only when
// its host is on the assistant's configured allow-list (an index's URLs are data too).
func KnowledgeTool(s KnowledgeSearcher, tokens graph.TokenNeeder, resource string) Tool {
	return toolFunc{Spec{Name: "knowledge_search",
		Description: "Search the organisation's knowledge base (handbooks, policies, documentation) as the user; returns up to 5 documents the user may read, each with a ref number to cite as [ref].",
		Params:      []Param{{Name: "words", Description: "what to look for", Required: true, MaxLen: 200}}},
		func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
			tok, err := tokens.Need(ctx, t, resource)
			switch {
			case errors.Is(err, sso.ErrPrompted):
				return Result{}, ErrUserPrompted
			case errors.Is(err, sso.ErrNotConfigured):
				return Result{}, &BadInputError{Msg: "Knowledge-base search needs Microsoft 365 sign-in, which is not configured for this bot."}
			case err != nil:
				return Result{}, err
			}
			docs, err := s.Search(ctx, tok, a["words"], knowledgeTop)
			switch {
			case errors.Is(err, aisearch.ErrUserRefused):
				return Result{}, &BadInputError{Msg: "The knowledge base did not accept the user's sign-in; they can type signout and ask again."}
			case errors.Is(err, aisearch.ErrForbidden):
				return Result{}, &BadInputError{Msg: "This bot is not allowed to search the knowledge base; an administrator must grant it access."}
			case errors.Is(err, aisearch.ErrUnavailable):
				return Result{}, &BadInputError{Msg: "The knowledge base is busy or unavailable right now."}
			case err != nil:
				return Result{}, err
			}
			res := Result{Citations: make([]Citation, 0, len(docs))}
			for _, d := range docs {
				res.Citations = append(res.Citations, Citation{Title: d.Title, URL: d.URL, Excerpt: clip(d.Content, knowledgeExcerpt)})
			}
			if len(docs) == 0 {
				res.Data = []any{} // nothing the user may read matches
			}
			return res, nil
		}}
}

// clip cuts s to at most n characters (n > 0) on a rune boundary, the last one marking the cut.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
