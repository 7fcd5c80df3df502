// Package mdtexttest renders bot Markdown the way the Agents Playground does (CommonMark + GFM,
// raw HTML passed through), for tests that assert what a reader sees.
package mdtexttest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
	xhtml "golang.org/x/net/html"
)

// Render returns the visible text of markdown and the elements it produced, in document order
// (without html, head and body). A link whose target is exactly its visible text (GFM's and
// Teams' autolinked bare URL) is not counted as an element.
func Render(t testing.TB, markdown string) (text string, elements []string) {
	t.Helper()
	md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))
	var out bytes.Buffer
	if err := md.Convert([]byte(markdown), &out); err != nil {
		t.Fatal(err)
	}
	doc, err := xhtml.Parse(&out)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	var walk func(*xhtml.Node)
	walk = func(n *xhtml.Node) {
		switch n.Type {
		case xhtml.TextNode:
			sb.WriteString(n.Data)
		case xhtml.ElementNode:
			switch n.Data {
			case "html", "head", "body":
			case "a":
				if n.FirstChild == nil || n.FirstChild.Data != attr(n, "href") {
					elements = append(elements, "a")
				}
			default:
				elements = append(elements, n.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return strings.TrimSpace(sb.String()), elements
}

func attr(n *xhtml.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
