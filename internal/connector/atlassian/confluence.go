package atlassian

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Page is a Confluence page as the bot shows it.
type Page struct {
	ID      string
	Title   string
	Space   string // space name
	Excerpt string // plain text
	Updated time.Time
	// URL opens the page in the browser.
	URL string
}

// Confluence calls Confluence as the user on one site.
type Confluence struct {
	hc   *http.Client
	site Site
	base string // REST v1 root: …/wiki/rest/api (Cloud) or {base}/rest/api (Data Center)
	v2   string // REST v2 root on Cloud (…/wiki/api/v2); "" on Data Center, which has no v2
	wiki string // browser root of the wiki, for links
}

// Confluence returns a Confluence client for site using the user's authorized client.
// On Cloud, CQL search uses REST v1 (v2 has no search; scope search:confluence) and pages are
// read through REST v2 (scopes read:page:confluence and read:space:confluence). Data Center
// has only the REST API at {base}/rest/api.
func (c *Connector) Confluence(hc *http.Client, site Site) *Confluence {
	if site.dataCenter {
		return &Confluence{hc: hc, site: site, base: site.URL + "/rest/api", wiki: site.URL}
	}
	root := site.apiURL + "/ex/confluence/" + url.PathEscape(site.ID) + "/wiki"
	return &Confluence{hc: hc, site: site, base: root + "/rest/api", v2: root + "/api/v2", wiki: site.URL + "/wiki"}
}

// Search finds pages whose text matches the user's words (CQL `type = page AND text ~ "…"`).
func (c *Confluence) Search(ctx context.Context, text string, max int) ([]Page, error) {
	t, err := searchText(text)
	if err != nil {
		return nil, err
	}
	if max <= 0 || max > 25 {
		max = 10
	}
	q := url.Values{"cql": {"type = page AND text ~ " + quoteString(t)}, "limit": {strconv.Itoa(max)}}
	var res struct {
		Results []struct {
			Content struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			} `json:"content"`
			Title     string `json:"title"`
			Excerpt   string `json:"excerpt"`
			URL       string `json:"url"`
			Container struct {
				Title string `json:"title"`
			} `json:"resultGlobalContainer"`
			LastModified string `json:"lastModified"`
		} `json:"results"`
		Links struct {
			Base string `json:"base"`
		} `json:"_links"`
	}
	if err := getJSON(ctx, c.hc, "confluence search", c.base+"/search?"+q.Encode(), &res, nil); err != nil {
		return nil, err
	}
	out := make([]Page, 0, len(res.Results))
	for _, r := range res.Results {
		p := Page{ID: r.Content.ID, Title: plainText(orDefault(r.Content.Title, r.Title), 200),
			Space: r.Container.Title, Excerpt: plainText(r.Excerpt, 300)}
		p.Updated, _ = time.Parse(time.RFC3339, r.LastModified)
		p.URL = c.link(res.Links.Base, r.URL, p.ID)
		out = append(out, p)
	}
	return out, nil
}

// Page fetches a page by id or by a link to it. A page that does not exist and one the user
// may not view both give a *NotPermittedError (Confluence answers both with 404).
func (c *Confluence) Page(ctx context.Context, ref string) (Page, error) {
	id, err := c.PageID(ref)
	if err != nil {
		return Page{}, err
	}
	if c.v2 == "" {
		return c.pageV1(ctx, id)
	}
	return c.pageV2(ctx, id)
}

// pageV2 reads GET /wiki/api/v2/pages/{id}?body-format=view, then the space's name from
// GET /wiki/api/v2/spaces/{spaceId} (a v2 page names its space only by id).
func (c *Confluence) pageV2(ctx context.Context, id string) (Page, error) {
	var x struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		SpaceID string `json:"spaceId"`
		Body    struct {
			View struct {
				Value string `json:"value"`
			} `json:"view"`
		} `json:"body"`
		Version struct {
			CreatedAt string `json:"createdAt"`
		} `json:"version"`
		Links struct {
			WebUI string `json:"webui"`
			Base  string `json:"base"`
		} `json:"_links"`
	}
	notPermitted := func() error { return &NotPermittedError{Kind: "page", Ref: id} }
	if err := getJSON(ctx, c.hc, "confluence page", c.v2+"/pages/"+id+"?body-format=view", &x, notPermitted); err != nil {
		return Page{}, err
	}
	p := Page{ID: x.ID, Title: plainText(x.Title, 200), Excerpt: plainText(x.Body.View.Value, 300)}
	p.Updated, _ = time.Parse(time.RFC3339, x.Version.CreatedAt)
	p.URL = c.link(orDefault(x.Links.Base, c.wiki), x.Links.WebUI, x.ID)
	if digitsRE.MatchString(x.SpaceID) {
		var sp struct {
			Name string `json:"name"`
		}
		err := getJSON(ctx, c.hc, "confluence space", c.v2+"/spaces/"+x.SpaceID, &sp, notPermitted)
		var np *NotPermittedError
		switch {
		case err == nil:
			p.Space = plainText(sp.Name, 100)
		case !errors.As(err, &np):
			return Page{}, err
		}
	}
	return p, nil
}

// pageV1 reads Data Center's GET /rest/api/content/{id}?expand=space,body.view,version.
func (c *Confluence) pageV1(ctx context.Context, id string) (Page, error) {
	var x struct {
		ID    string `json:"id"`
		Title string `json:"title"`
		Space struct {
			Name string `json:"name"`
		} `json:"space"`
		Body struct {
			View struct {
				Value string `json:"value"`
			} `json:"view"`
		} `json:"body"`
		Version struct {
			When string `json:"when"`
		} `json:"version"`
		Links struct {
			WebUI string `json:"webui"`
			Base  string `json:"base"`
		} `json:"_links"`
	}
	u := c.base + "/content/" + id + "?expand=" + url.QueryEscape("space,body.view,version")
	if err := getJSON(ctx, c.hc, "confluence page", u, &x, func() error {
		return &NotPermittedError{Kind: "page", Ref: id}
	}); err != nil {
		return Page{}, err
	}
	p := Page{ID: x.ID, Title: plainText(x.Title, 200), Space: x.Space.Name, Excerpt: plainText(x.Body.View.Value, 300)}
	p.Updated, _ = time.Parse(time.RFC3339, x.Version.When)
	p.URL = c.link(x.Links.Base, x.Links.WebUI, x.ID)
	return p, nil
}

var (
	digitsRE   = regexp.MustCompile(`^[0-9]{1,20}$`)
	pagePathRE = regexp.MustCompile(`/pages/([0-9]{1,20})(?:/|$)`)
)

const errPageHelp = "Give a Confluence page id or a link to the page, for example \"confluence page 123456\"."

// PageID extracts the page id from a page id or a page link on this client's site:
// …/wiki/spaces/KEY/pages/123456/Title, …/pages/viewpage.action?pageId=123456 or
// …/pages/123456. Links to other hosts are refused, since the same id on this site would be a
// different page.
func (c *Confluence) PageID(ref string) (string, error) {
	ref = strings.TrimSpace(strings.Trim(strings.TrimSpace(ref), "<>"))
	if digitsRE.MatchString(ref) {
		return ref, nil
	}
	u, err := url.Parse(ref)
	if err != nil || u.Host == "" {
		return "", badInput(errPageHelp)
	}
	site, _ := url.Parse(c.site.URL)
	if site == nil || !strings.EqualFold(u.Hostname(), site.Hostname()) {
		return "", badInput("That link is not on %s, the Atlassian site you are connected to.", c.site.URL)
	}
	if id := u.Query().Get("pageId"); digitsRE.MatchString(id) {
		return id, nil
	}
	if m := pagePathRE.FindStringSubmatch(u.Path); m != nil {
		return m[1], nil
	}
	return "", badInput(errPageHelp)
}

// link builds the browser link from the API's base and webui path, falling back to a link
// by id when the API's base is not on the site (never link users elsewhere).
func (c *Confluence) link(base, webui, id string) string {
	if base != "" && strings.HasPrefix(webui, "/") {
		if b, err := url.Parse(base); err == nil && b.Scheme == "https" {
			if s, err := url.Parse(c.site.URL); err == nil && strings.EqualFold(b.Host, s.Host) {
				return strings.TrimRight(base, "/") + webui
			}
		}
	}
	if !digitsRE.MatchString(id) {
		return c.wiki
	}
	return c.wiki + "/pages/viewpage.action?pageId=" + id
}
