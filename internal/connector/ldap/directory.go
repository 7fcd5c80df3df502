package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/onbehalf/onbehalf/internal/audit"
)

// Errors the commands turn into sentences.
var (
	// ErrUnavailable: the directory cannot be reached (or is busy); retrying later may work.
	ErrUnavailable = errors.New("ldap: directory unavailable")
	// ErrControlUnsupported: the root DSE does not list the Proxied Authorization control.
	ErrControlUnsupported = errors.New("ldap: proxied authorization not supported by the directory")
	// ErrProxyDenied: the directory refused to let the bot act for the user's entry.
	ErrProxyDenied = errors.New("ldap: the directory refused to act for this user")
	// ErrUnmapped: no directory entry matches the user's claim (or the claim is empty).
	ErrUnmapped = errors.New("ldap: user has no directory entry")
	// ErrAmbiguous: more than one directory entry matches the user's claim.
	ErrAmbiguous = errors.New("ldap: user matches several directory entries")
)

// Identity is the signed-in user as a validated Teams SSO token names them. It must come from
// a token whose signature, issuer, audience and subject were checked, never from chat text or
// a display name.
type Identity struct {
	TenantID string
	ObjectID string // oid
	UPN      string // preferred_username or upn
	Mail     string // email
}

// Entry is one directory entry as the user may read it: attributes in the order asked for,
// only those the directory returned.
type Entry struct {
	DN    string
	Attrs []Attr
}

// Attr is one attribute with its values.
type Attr struct {
	Name   string
	Values []string
}

// Get returns the first value of the named attribute, or "".
func (e Entry) Get(name string) string {
	for _, a := range e.Attrs {
		if strings.EqualFold(a.Name, name) && len(a.Values) > 0 {
			return a.Values[0]
		}
	}
	return ""
}

// Result is a search's entries; Truncated when the size limit cut it short.
type Result struct {
	Entries   []Entry
	Truncated bool
}

// Attributes returned by the commands.
var (
	personAttrs = []string{"cn", "mail", "title", "telephoneNumber", "homePhone", "employeeNumber"}
	searchAttrs = []string{"cn", "mail", "title", "description"}
	// Where `directory` and `ldap search` look for the user's words.
	personMatch = []string{"cn", "mail", "uid"}
	searchMatch = []string{"cn", "mail", "uid", "title", "description"}
)

// Directory is an open LDAP connector. Safe for concurrent use.
type Directory struct {
	cfg    *Config
	u      *url.URL
	opened atomic.Int64

	mu        sync.Mutex
	idle      []*goldap.Conn
	supported bool   // the root DSE listed the control
	self      string // the bot's own DN, as Who am I? without the control answered
	mapped    map[string]mapping
}

type mapping struct {
	dn      string
	expires time.Time
}

// Open validates cfg and returns the directory. It makes no network call; Check reads the
// root DSE and verifies the bot's credential.
func Open(cfg Config) (*Directory, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.URL)
	return &Directory{cfg: c, u: u, mapped: map[string]mapping{}}, nil
}

// ConnectionsOpened is how many connections were dialled so far.
func (d *Directory) ConnectionsOpened() int64 { return d.opened.Load() }

// Close closes the idle connections.
func (d *Directory) Close() {
	d.mu.Lock()
	idle := d.idle
	d.idle = nil
	d.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// Check binds as the bot and reads the root DSE: a *SettingError when the bot's credential or
// the directory's certificate is wrong, ErrControlUnsupported when the server does not list
// the Proxied Authorization control, ErrUnavailable when it cannot be reached.
func (d *Directory) Check(ctx context.Context) error {
	var controls []string
	var self string
	err := d.do(ctx, func(c *goldap.Conn) error {
		res, err := c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, int(d.cfg.Timeout/time.Second), false,
			"(objectClass=*)", []string{"supportedControl"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) == 1 {
			controls = res.Entries[0].GetAttributeValues("supportedControl")
		}
		// The bot's own identity, which the commands never proxy for.
		who, err := c.WhoAmI(nil)
		if err != nil {
			return err
		}
		self = strings.TrimPrefix(who.AuthzID, "dn:")
		return nil
	})
	if err != nil {
		return err
	}
	for _, oid := range controls {
		if oid == ProxiedAuthzOID {
			d.mu.Lock()
			d.supported, d.self = true, self
			d.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("%w: "+proxyControlNotListedF, ErrControlUnsupported, d.cfg.URL, ProxiedAuthzOID)
}

// ready checks the root DSE once (again after a failure).
func (d *Directory) ready(ctx context.Context) error {
	d.mu.Lock()
	ok := d.supported
	d.mu.Unlock()
	if ok {
		return nil
	}
	return d.Check(ctx)
}

// target checks, before anything is sent, that dn is an entry the bot may act for: under
// UserBaseDN and not the bot itself. The directory's own rules (authzTo) are checked again by
// the server; this keeps a misconfigured mapping from ever asking.
func (d *Directory) target(dn string) error {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return fmt.Errorf("%w: not a DN", ErrProxyDenied)
	}
	base, err := goldap.ParseDN(d.cfg.UserBaseDN)
	if err != nil || !base.AncestorOfFold(parsed) {
		return fmt.Errorf("%w: the entry is outside %s", ErrProxyDenied, SettingUserBaseDN)
	}
	d.mu.Lock()
	self := d.self
	d.mu.Unlock()
	for _, own := range []string{self, d.cfg.BindDN} {
		if o, err := goldap.ParseDN(own); err == nil && own != "" && o.EqualFold(parsed) {
			return fmt.Errorf("%w: the entry is the bot's own", ErrProxyDenied)
		}
	}
	return nil
}

// MapUser finds the DN of the user's entry: a search as the bot itself for the configured
// attribute equal to the configured claim of the validated token, under UserBaseDN. It is the
// only operation without the proxy control. Results are remembered for MapTTL.
func (d *Directory) MapUser(ctx context.Context, id Identity) (string, error) {
	var value string
	switch d.cfg.UserClaim {
	case claimUPN:
		value = id.UPN
	case claimMail:
		value = id.Mail
	case claimOID:
		value = id.ObjectID
	}
	if strings.TrimSpace(value) == "" {
		return "", fmt.Errorf("%w: the sign-in token has no %s claim", ErrUnmapped, d.cfg.UserClaim)
	}
	if hasControl(value) || len(value) > 256 {
		return "", fmt.Errorf("%w: the %s claim is not a plain value", ErrUnmapped, d.cfg.UserClaim)
	}
	key := d.cfg.UserClaim + "\x00" + strings.ToLower(id.TenantID) + "\x00" + strings.ToLower(value)
	now := d.cfg.Now()
	d.mu.Lock()
	m, ok := d.mapped[key]
	d.mu.Unlock()
	if ok && now.Before(m.expires) {
		return m.dn, nil
	}
	if err := d.ready(ctx); err != nil {
		return "", err
	}
	filter := "(&" + equality("objectClass", d.cfg.PersonClass) + equality(d.cfg.UserAttribute, value) + ")"
	var dns []string
	err := d.do(ctx, func(c *goldap.Conn) error {
		res, err := c.Search(goldap.NewSearchRequest(d.cfg.UserBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, int(d.cfg.Timeout/time.Second), false,
			filter, []string{"1.1"}, nil))
		if res != nil {
			for _, e := range res.Entries {
				dns = append(dns, e.DN)
			}
		}
		if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
			return nil
		}
		return err
	})
	if err != nil {
		return "", err
	}
	switch len(dns) {
	case 0:
		return "", fmt.Errorf("%w: no entry with %s equal to the %s claim", ErrUnmapped, d.cfg.UserAttribute, d.cfg.UserClaim)
	case 1:
	default:
		return "", fmt.Errorf("%w: %d entries have %s equal to the %s claim", ErrAmbiguous, len(dns), d.cfg.UserAttribute, d.cfg.UserClaim)
	}
	d.mu.Lock()
	if len(d.mapped) > 10000 {
		d.mapped = map[string]mapping{}
	}
	d.mapped[key] = mapping{dn: dns[0], expires: now.Add(d.cfg.MapTTL)}
	d.mu.Unlock()
	return dns[0], nil
}

// WhoAmI runs the "Who am I?" extended operation (RFC 4532) under the proxy control for dn:
// the authorization identity the directory applies to that user's requests.
func (d *Directory) WhoAmI(ctx context.Context, dn string) (string, error) {
	if err := d.ready(ctx); err != nil {
		return "", err
	}
	if err := d.target(dn); err != nil {
		return "", err
	}
	var authz string
	start := d.cfg.Now()
	err := d.do(ctx, func(c *goldap.Conn) error {
		r, err := c.WhoAmI([]goldap.Control{proxyFor(dn)})
		if err != nil {
			return err
		}
		authz = r.AuthzID
		return nil
	})
	d.record(ctx, "EXTENDED whoami", start, err)
	return authz, err
}

// People searches people by name, mail or user id, as the user dn.
func (d *Directory) People(ctx context.Context, dn, text string) (*Result, error) {
	ws, err := words(text)
	if err != nil {
		return nil, err
	}
	return d.search(ctx, dn, allWords(d.cfg.PersonClass, personMatch, ws), personAttrs)
}

// Search finds entries of any kind whose name, mail, user id, title or description contain
// every word, as the user dn.
func (d *Directory) Search(ctx context.Context, dn, text string) (*Result, error) {
	ws, err := words(text)
	if err != nil {
		return nil, err
	}
	return d.search(ctx, dn, allWords("", searchMatch, ws), searchAttrs)
}

func (d *Directory) search(ctx context.Context, dn, filter string, attrs []string) (*Result, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	if err := d.target(dn); err != nil {
		return nil, err
	}
	out := &Result{}
	start := d.cfg.Now()
	err := d.do(ctx, func(c *goldap.Conn) error {
		out.Entries, out.Truncated = nil, false
		req := goldap.NewSearchRequest(d.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, d.cfg.SizeLimit, int(d.cfg.Timeout/time.Second), false,
			filter, attrs, []goldap.Control{proxyFor(dn)})
		res, err := c.Search(req)
		switch {
		case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
			out.Truncated = true
		case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
			// The user may not see the base itself: nothing they may read.
			return nil
		case err != nil:
			return err
		}
		for _, e := range res.Entries {
			out.Entries = append(out.Entries, toEntry(e, attrs))
		}
		return nil
	})
	d.record(ctx, "SEARCH subtree", start, err)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// record adds the audit record of one operation made as the user: the directory's host, and
// the proxied authorization the bot's bind acts with (no token is involved). A refusal to act
// for the user counts as 403, as over HTTP.
func (d *Directory) record(ctx context.Context, op string, start time.Time, err error) {
	status := 0
	if errors.Is(err, ErrProxyDenied) {
		status = http.StatusForbidden
	}
	d.cfg.Audit.Call(ctx, audit.Target{Connector: "ldap", Audience: d.u.Host, Scopes: []string{"proxied-authorization"}}, op, start, status, err)
}

func toEntry(e *goldap.Entry, attrs []string) Entry {
	out := Entry{DN: e.DN}
	for _, name := range attrs {
		if v := e.GetAttributeValues(name); len(v) > 0 {
			out.Attrs = append(out.Attrs, Attr{Name: name, Values: v})
		}
	}
	return out
}

// do runs f on a bound connection. A pooled connection that fails at the network level is
// dropped and f retried once on a fresh one (a directory restart closes pooled connections),
// except after a timeout: a hung directory would only hang again. Errors are classified for
// the caller.
func (d *Directory) do(ctx context.Context, f func(*goldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, pooled, err := d.get(ctx)
		if err != nil {
			return err
		}
		err = f(c)
		if err == nil {
			d.put(c)
			return nil
		}
		if isNetwork(err) || c.IsClosing() {
			_ = c.Close()
			if pooled && attempt == 0 && !isTimeout(err) && ctx.Err() == nil {
				continue
			}
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		d.put(c)
		return classify(err)
	}
}

func (d *Directory) get(ctx context.Context) (*goldap.Conn, bool, error) {
	d.mu.Lock()
	for len(d.idle) > 0 {
		c := d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
		if !c.IsClosing() {
			d.mu.Unlock()
			return c, true, nil
		}
		_ = c.Close()
	}
	d.mu.Unlock()
	c, err := d.dial(ctx)
	return c, false, err
}

func (d *Directory) put(c *goldap.Conn) {
	d.mu.Lock()
	if len(d.idle) < d.cfg.MaxConns && !c.IsClosing() {
		d.idle = append(d.idle, c)
		c = nil
	}
	d.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// dial connects (LDAPS, or ldap:// with StartTLS unless AllowPlain) and binds as the bot.
func (d *Directory) dial(ctx context.Context) (*goldap.Conn, error) {
	tc, err := d.tlsConfig(ctx, d.u.Hostname())
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: d.cfg.Timeout}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d.cfg.Timeout {
		dialer.Timeout = time.Until(dl)
	}
	c, err := goldap.DialURL(d.cfg.URL, goldap.DialWithDialer(dialer), goldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, d.dialError(err)
	}
	d.opened.Add(1)
	c.SetTimeout(d.cfg.Timeout)
	if d.u.Scheme == "ldap" && !d.cfg.AllowPlain {
		if err := c.StartTLS(tc); err != nil {
			_ = c.Close()
			return nil, d.dialError(err)
		}
	}
	if err := d.bind(ctx, c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (d *Directory) bind(ctx context.Context, c *goldap.Conn) error {
	if d.cfg.ClientCertSecret != "" {
		if d.u.Scheme == "ldap" && d.cfg.AllowPlain {
			return &SettingError{Setting: SettingClientCert, Reason: "SASL EXTERNAL needs TLS: use ldaps:// or StartTLS"}
		}
		if err := c.ExternalBind(); err != nil {
			if isNetwork(err) {
				return fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			return &SettingError{Setting: SettingClientCert, Reason: "the directory refused the client certificate (SASL EXTERNAL)", Err: err}
		}
		return nil
	}
	pw, err := d.cfg.Secret(ctx, d.cfg.BindPasswordSecret)
	if err != nil {
		return &SettingError{Setting: SettingBindPassword, Reason: "cannot read the Key Vault secret", Err: err}
	}
	if pw == "" {
		// An empty password would be an unauthenticated bind (RFC 4513 section 5.1.2).
		return &SettingError{Setting: SettingBindPassword, Reason: "the secret is empty"}
	}
	if err := c.Bind(d.cfg.BindDN, pw); err != nil {
		switch {
		case isNetwork(err):
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials):
			return &SettingError{Setting: SettingBindPassword, Reason: "the directory refused the bind as " + SettingBindDN + " with this password (invalid credentials): check both settings",
				Err: errors.New("invalid credentials")}
		case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidDNSyntax):
			return &SettingError{Setting: SettingBindDN, Reason: "not a valid DN"}
		default:
			return &SettingError{Setting: SettingBindDN, Reason: "the directory refused the bind", Err: err}
		}
	}
	return nil
}

// dialError tells certificate problems (a setting to fix) from an unreachable server.
func (d *Directory) dialError(err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &hn), strings.Contains(err.Error(), "x509: certificate is valid for"):
		return &SettingError{Setting: SettingURL, Reason: "the directory's certificate does not name this host", Err: err}
	case errors.As(err, &ua), errors.As(err, &cv):
		return &SettingError{Setting: SettingCACert, Reason: "the directory's certificate is not trusted: set " + SettingCACert + " to its CA", Err: err}
	case strings.Contains(err.Error(), "x509: "):
		// go-ldap's StartTLS flattens the handshake error into text.
		return &SettingError{Setting: SettingCACert, Reason: "the directory's certificate is not trusted: set " + SettingCACert + " to its CA", Err: err}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return (errors.As(err, &ne) && ne.Timeout()) || strings.Contains(err.Error(), "timed out")
}

func isNetwork(err error) bool {
	return goldap.IsErrorAnyOf(err, goldap.ErrorNetwork, goldap.LDAPResultUnavailable, goldap.LDAPResultBusy)
}

// classify maps LDAP result codes (RFC 4511 appendix A, RFC 4370 section 6) to the errors
// commands explain.
func classify(err error) error {
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultAuthorizationDenied):
		return fmt.Errorf("%w: %v", ErrProxyDenied, err)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultUnavailableCriticalExtension):
		return fmt.Errorf("%w: %v", ErrControlUnsupported, err)
	}
	return fmt.Errorf("ldap: %w", err)
}
