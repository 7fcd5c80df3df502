package deploycheck

import (
	"fmt"
	"regexp"
	"strings"
)

var manifestPlaceholder = regexp.MustCompile(`\$\{\{([A-Z0-9_]+)\}\}`)

// resolveManifest gives a manifest template string its canonical form: each ${{NAME}} stands
// for the main.bicep output NAME (azd writes outputs to the environment the package script
// reads), so "api://botid-${{BOT_APP_ID}}" resolves like the Bicep string
// 'api://botid-${<output BOT_APP_ID>}'. ok is false when a placeholder names no output.
func (c *checker) resolveManifest(s string) (string, bool) {
	ok := true
	expr := manifestPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		name := manifestPlaceholder.FindStringSubmatch(m)[1]
		out, found := c.main.Outputs[name]
		if !found {
			ok = false
			return m
		}
		return "${" + out.Value.Text + "}"
	})
	lit := "'" + strings.ReplaceAll(expr, "'", `\'`) + "'"
	return c.in.resolveExpr(c.main, lit, 0), ok
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func (c *checker) checkManifest() {
	m := c.manifest
	if str(m["manifestVersion"]) != ManifestVersion ||
		!strings.Contains(str(m["$schema"]), "/teams/v"+ManifestVersion+"/MicrosoftTeams.schema.json") {
		c.fail(ManifestSchema, nil, 0, "manifestVersion %q with $schema %q; want %s and its schema", str(m["manifestVersion"]), str(m["$schema"]), ManifestVersion)
	}

	for _, ph := range manifestPlaceholder.FindAllStringSubmatch(fmt.Sprint(m), -1) {
		if _, ok := c.main.Outputs[ph[1]]; !ok && !strings.HasPrefix(ph[1], "TEAMS_APP_") {
			c.fail(ManifestWebAppInfo, nil, 0, "placeholder ${{%s}} names no output of infra/main.bicep", ph[1])
		}
	}

	// webApplicationInfo: {id: bot app id, resource: identifier URI}.
	wai, _ := m["webApplicationInfo"].(map[string]any)
	id, _ := c.resolveManifest(str(wai["id"]))
	if c.appID == "" || id != c.appID {
		c.fail(ManifestWebAppInfo, nil, 0, "webApplicationInfo.id %q does not resolve to the SSO application's appId", str(wai["id"]))
	}
	res, _ := c.resolveManifest(str(wai["resource"]))
	if c.identifierURI == "" || res != c.identifierURI {
		c.fail(ManifestWebAppInfo, nil, 0, "webApplicationInfo.resource %q resolves to %s, want the identifier URI %s", str(wai["resource"]), res, c.identifierURI)
	}

	bots, _ := m["bots"].([]any)
	if len(bots) != 1 {
		c.fail(ManifestBotID, nil, 0, "want exactly one bot in the manifest, found %d", len(bots))
		return
	}
	bot, _ := bots[0].(map[string]any)
	if botID, _ := c.resolveManifest(str(bot["botId"])); c.appID == "" || botID != c.appID {
		c.fail(ManifestBotID, nil, 0, "bots[0].botId %q does not resolve to the SSO application's appId", str(bot["botId"]))
	}

	domains, _ := m["validDomains"].([]any)
	var hasBF, hasHost bool
	for _, d := range domains {
		if str(d) == "*.botframework.com" {
			hasBF = true
		}
		if r, _ := c.resolveManifest(str(d)); c.siteHost != "" && r == c.siteHost {
			hasHost = true
		}
	}
	if !hasBF || !hasHost {
		c.fail(ManifestValidDomains, nil, 0, "validDomains %v must hold *.botframework.com and the Function App host", domains)
	}

	c.checkCommands(bot)
}

func (c *checker) checkCommands(bot map[string]any) {
	lists, _ := bot["commandLists"].([]any)
	seen := map[string]bool{}
	for _, l := range lists {
		list, _ := l.(map[string]any)
		cmds, _ := list["commands"].([]any)
		if len(cmds) > 10 {
			c.fail(ManifestCommands, nil, 0, "a command list holds %d commands; Teams allows 10", len(cmds))
		}
		for _, cm := range cmds {
			cmd, _ := cm.(map[string]any)
			title := str(cmd["title"])
			if len(title) > 32 || len(str(cmd["description"])) > 128 || str(cmd["description"]) == "" {
				c.fail(ManifestCommands, nil, 0, "command %q: title ≤ 32 and a description of 1–128 characters are required", title)
			}
			seen[title] = true
		}
	}
	for _, want := range BotCommands {
		if !seen[want] {
			c.fail(ManifestCommands, nil, 0, "command %q is not listed in commandLists", want)
		}
	}
}
