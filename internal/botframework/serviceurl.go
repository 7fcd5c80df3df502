package botframework

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// CheckServiceURL reports whether raw is a serviceUrl the bot may send to: a plain origin and
// path — scheme, host, optional port, optional path, nothing else. A query, a fragment,
// userinfo, percent-encoding, dot segments, whitespace, an empty host or port, or an opaque
// form are refused, because the comparison with the token's serviceurl claim and the
// connector's trust list would otherwise disagree with where a reply is actually sent.
//
// The scheme must be https. With allowLoopbackHTTP, http is accepted for a loopback host
// (localhost, 127.0.0.0/8, ::1): the local Agents Playground and the Bot Framework Emulator
// serve their connectors there.
//
// Sources: the Bot Framework REST API reference (bot-docs
// rest-api/bot-framework-rest-connector-api-reference.md, "Base URI") uses the serviceUrl as the
// base of every request path; every serviceUrl it and the Teams documentation show is such a
// plain URL (https://smba.trafficmanager.net/{region}/). That no real channel sends anything
// else is unverified; a refused activity is logged with the reason (never the URL itself).
//
// The error wraps ErrMalformedActivity and names the offending part, never the URL, which may
// carry credentials in its userinfo.
func CheckServiceURL(raw string, allowLoopbackHTTP bool) error {
	if raw == "" {
		return fmt.Errorf("%w: serviceUrl is empty", ErrMalformedActivity)
	}
	for _, r := range raw {
		var what string
		switch {
		case r == '?':
			what = "carries a query"
		case r == '#':
			what = "carries a fragment"
		case r == '@':
			what = "carries userinfo"
		case r == '%':
			what = "carries percent-encoded characters"
		case r == '\\':
			what = "contains a backslash"
		case r <= ' ' || r == 0x7f:
			what = "contains whitespace or control characters"
		case r > 0x7f:
			what = "contains non-ASCII characters"
		}
		if what != "" {
			return fmt.Errorf("%w: serviceUrl %s (only scheme, host, port and path are allowed)", ErrMalformedActivity, what)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: serviceUrl is not a URL", ErrMalformedActivity)
	}
	switch {
	case u.Opaque != "":
		return fmt.Errorf("%w: serviceUrl is not a hierarchical URL (scheme://host/path)", ErrMalformedActivity)
	case u.Host == "":
		return fmt.Errorf("%w: serviceUrl has no host", ErrMalformedActivity)
	case u.User != nil:
		return fmt.Errorf("%w: serviceUrl carries userinfo", ErrMalformedActivity)
	}
	if err := checkHost(u); err != nil {
		return err
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: serviceUrl contains dot segments", ErrMalformedActivity)
		}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowLoopbackHTTP && isLoopback(u.Hostname()) {
			return nil
		}
		if allowLoopbackHTTP {
			return fmt.Errorf("%w: serviceUrl uses http for a host that is not loopback; only https is allowed there", ErrMalformedActivity)
		}
		return fmt.Errorf("%w: serviceUrl is not https", ErrMalformedActivity)
	default:
		return fmt.Errorf("%w: serviceUrl is not an https URL", ErrMalformedActivity)
	}
}

// checkHost refuses an empty port and host names that are neither DNS names nor IP literals.
func checkHost(u *url.URL) error {
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: serviceUrl has no host", ErrMalformedActivity)
	}
	if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%w: serviceUrl has an empty port", ErrMalformedActivity)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: serviceUrl has an invalid port", ErrMalformedActivity)
		}
	}
	if strings.HasPrefix(u.Host, "[") {
		if net.ParseIP(host) == nil {
			return fmt.Errorf("%w: serviceUrl has an invalid IP literal", ErrMalformedActivity)
		}
		return nil
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") || strings.IndexFunc(label, notHostChar) >= 0 {
			return fmt.Errorf("%w: serviceUrl has an invalid host name", ErrMalformedActivity)
		}
	}
	return nil
}

func notHostChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-')
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NormalizeServiceURL returns the comparable form of a serviceUrl: lower-case scheme and
// host, no trailing slash (channels are not consistent about it). A serviceUrl that
// CheckServiceURL refuses (loopback http allowed) has no comparable form: the result is "",
// which equals nothing the connector trusts.
func NormalizeServiceURL(s string) string {
	if CheckServiceURL(s, true) != nil {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String()
}
