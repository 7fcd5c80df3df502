package doctor

import (
	"fmt"
	"strings"

	"github.com/onbehalf/onbehalf/internal/policy"
)

// checkConnectorPolicy shows the connector policy in force (CONNECTOR_POLICY) and warns when a
// connector may write without the user confirming each write.
func checkConnectorPolicy(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	p, err := policy.Parse(s.Settings["CONNECTOR_POLICY"])
	if err != nil {
		return fail(s.appSettingsFix(`CONNECTOR_POLICY={"<connector>":{"write":false}}`), "%v", err)
	}
	if len(p.Names()) == 0 {
		return info("no CONNECTOR_POLICY: every connector may read and none may write (the default)")
	}
	var parts, unconfirmed []string
	for _, name := range p.Names() {
		r := p.Rule(name)
		var d []string
		switch {
		case r.Disabled:
			d = append(d, "turned off")
		case r.Write && r.Confirm:
			d = append(d, "may write, each write confirmed")
		case r.Write:
			d = append(d, "may write WITHOUT confirmation")
			unconfirmed = append(unconfirmed, name)
		default:
			d = append(d, "read only")
		}
		if len(r.Sites) > 0 {
			d = append(d, "sites "+strings.Join(r.Sites, ", "))
		}
		parts = append(parts, fmt.Sprintf("%s: %s", name, strings.Join(d, "; ")))
	}
	parts = append(parts, "every other connector: read only")
	summary := strings.Join(parts, " | ")
	if len(unconfirmed) > 0 {
		return warn(s.appSettingsFix(`CONNECTOR_POLICY={"`+unconfirmed[0]+`":{"write":true,"confirm":true}}`),
			"writes are enabled without confirmation for %s — %s", strings.Join(unconfirmed, ", "), summary)
	}
	return pass("%s", summary)
}
