package deploycheck

import (
	"regexp"
	"sort"
	"strings"
)

// The Bicep linter rules infra/bicepconfig.json raises to error level, as the Bicep compiler
// applies them (Azure/bicep src/Bicep.Core/Analyzers/Linter/Rules/SecretsInParamsMustBeSecureRule.cs
// and OutputsShouldNotContainSecretsRule.cs). `bicep build` stops on any of them, and no Bicep
// compiler runs here, so the checker applies the name rules itself.
var (
	// lintSecretName is HasSecretRegex of secure-secrets-in-params (case-insensitive).
	lintSecretName = regexp.MustCompile(`(?i)password|pwd|secret|accountkey|acctkey`)
	// lintAllowedName is its AllowedRegex: names that only refer to a secret.
	lintAllowedName = regexp.MustCompile(`(?i)secretpermissions|secretversion|secretur[il]|secretname`)
	// lintPasswordOutput is the output-name test of outputs-should-not-contain-secrets.
	lintPasswordOutput = regexp.MustCompile(`(?i)password`)
)

// lintChecksType reports whether secure-secrets-in-params looks at a parameter of this
// declared type: the rule checks string and object parameters (and so user-defined types
// resolving to them); bool, int and array parameters are never flagged.
func lintChecksType(typ string) bool {
	typ = strings.TrimSpace(typ)
	switch {
	case typ == "bool", typ == "int", typ == "array", strings.HasSuffix(typ, "[]"):
		return false
	}
	return true
}

// checkLinterSecretNames applies the two name rules to every param and output of every file.
func (c *checker) checkLinterSecretNames() {
	for _, f := range c.sortedFiles() {
		for _, name := range sortedDeclNames(f.Params) {
			d := f.Params[name]
			if d.Secure() || !lintChecksType(d.Type) {
				continue
			}
			if lintSecretName.MatchString(name) && !lintAllowedName.MatchString(name) {
				c.fail(SecretParamNames, f, d.Line, "parameter %s is named like a secret but is not @secure(); bicep build stops on secure-secrets-in-params (rename it, or name it …SecretName if it holds a Key Vault secret's name)", name)
			}
		}
		for _, name := range sortedDeclNames(f.Outputs) {
			d := f.Outputs[name]
			if !d.Secure() && lintPasswordOutput.MatchString(name) {
				c.fail(SecretOutputNames, f, d.Line, "output %s is named like a password; bicep build stops on outputs-should-not-contain-secrets", name)
			}
		}
	}
}

func sortedDeclNames(m map[string]*Decl) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
