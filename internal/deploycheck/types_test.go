package deploycheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The published Bicep type definitions (shared/bicep-types beside the repository: upstream
// types.json of Azure/bicep-types-az and microsoftgraph/msgraph-bicep-types, cut to the types
// infra/ declares; see its SOURCES.md). Without them the test is skipped.
const bicepTypesDir = "../../../shared/bicep-types"

// bicepTypes indexes resource types ("type@version", lower case) to their file and body.
type bicepTypes struct {
	files map[string][]map[string]any
	body  map[string]map[string]any
	file  map[string]string
}

func loadBicepTypes(t *testing.T) *bicepTypes {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(bicepTypesDir, "*.json"))
	if len(paths) == 0 {
		t.Skipf("no Bicep type definitions in %s", bicepTypesDir)
	}
	// More published files (types not yet in shared/bicep-types), from directories named by
	// BICEP_TYPES_EXTRA (separated like PATH).
	for _, dir := range filepath.SplitList(os.Getenv("BICEP_TYPES_EXTRA")) {
		more, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		paths = append(paths, more...)
	}
	bt := &bicepTypes{files: map[string][]map[string]any{}, body: map[string]map[string]any{}, file: map[string]string{}}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var arr []map[string]any
		if err := json.Unmarshal(raw, &arr); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		bt.files[p] = arr
		for _, x := range arr {
			if x["$type"] == "ResourceType" {
				key := strings.ToLower(x["name"].(string))
				bt.file[key] = p
				bt.body[key] = bt.deref(p, x["body"])
			}
		}
	}
	bt.addFallback("fallback:microsoft.cognitiveservices-2024-10-01", cognitiveServicesFallback())
	return bt
}

func (bt *bicepTypes) deref(file string, ref any) map[string]any {
	i, _ := strconv.Atoi(strings.TrimPrefix(ref.(map[string]any)["$ref"].(string), "#/"))
	return bt.files[file][i]
}

// Property flags of bicep-types (Bicep.Types TypePropertyFlags).
const (
	flagRequired = 1
	flagReadOnly = 2
)

// findings walks every declared resource's body against its type: unknown properties,
// read-only properties given a value, and string literals outside an enum.
func (bt *bicepTypes) findings(files map[string]*File) []string {
	var out []string
	var walk func(file string, typ map[string]any, n *Node, path string)
	walk = func(file string, typ map[string]any, n *Node, path string) {
		for typ["$type"] == "ArrayType" {
			typ = bt.deref(file, typ["itemType"])
		}
		if n == nil {
			return
		}
		switch n.Kind {
		case KindArray:
			for _, it := range n.Items {
				walk(file, typ, it, path+"[]")
			}
			return
		case KindLoop:
			walk(file, typ, n.Body, path+"[]")
			return
		case KindString:
			if typ["$type"] == "UnionType" {
				ok := false
				for _, e := range typ["elements"].([]any) {
					el := bt.deref(file, e)
					if v, isLit := el["value"].(string); (isLit && "'"+v+"'" == n.Text) || el["$type"] == "StringType" {
						ok = true
					}
				}
				if !ok {
					out = append(out, fmt.Sprintf("%s = %s: not one of the allowed values", path, n.Text))
				}
			}
			return
		case KindObject:
		default:
			return // an expression: its value is known only at deployment
		}
		if typ["$type"] != "ObjectType" {
			return
		}
		props, _ := typ["properties"].(map[string]any)
		for _, p := range n.Props {
			pd, ok := props[p.Key].(map[string]any)
			if !ok {
				if ap, has := typ["additionalProperties"]; has && ap != nil {
					walk(file, bt.deref(file, ap), p.Value, path+"."+p.Key)
				} else {
					out = append(out, fmt.Sprintf("%s.%s: no such property", path, p.Key))
				}
				continue
			}
			flags, _ := pd["flags"].(float64)
			if int(flags)&flagReadOnly != 0 && int(flags)&flagRequired == 0 {
				out = append(out, fmt.Sprintf("%s.%s: read-only", path, p.Key))
			}
			walk(file, bt.deref(file, pd["type"]), p.Value, path+"."+p.Key)
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, r := range files[name].Resources {
			key := strings.ToLower(r.Type + "@" + r.APIVersion)
			if r.APIVersion == "" { // a nested child declared without a version takes its type's only one
				for k := range bt.body {
					if strings.HasPrefix(k, strings.ToLower(r.Type)+"@") {
						key = k
					}
				}
			}
			body, ok := bt.body[key]
			if !ok {
				out = append(out, fmt.Sprintf("%s#%s: no published type %s", name, r.Symbol, key))
				continue
			}
			// Top-level keywords of a resource declaration that are not properties of its body.
			n := &Node{Kind: KindObject}
			for _, p := range r.Body.Props {
				if p.Key != "scope" && p.Key != "parent" && p.Key != "dependsOn" {
					n.Props = append(n.Props, p)
				}
			}
			walk(bt.file[key], body, n, name+"#"+r.Symbol)
		}
	}
	return out
}

// Every property infra/ sets exists in the published type of its resource, none is read-only,
// and every literal enum value is allowed: what `bicep build` type-checks, without a compiler.
func TestBicepMatchesPublishedTypes(t *testing.T) {
	bt := loadBicepTypes(t)
	files, err := LoadInfra(filepath.Join(repoRoot, "infra"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range bt.findings(files) {
		t.Error(f)
	}
}

// The type check finds each kind of mistake.
func TestBicepTypeCheckFindsMistakes(t *testing.T) {
	bt := loadBicepTypes(t)
	for _, c := range []struct{ name, file, old, new, want string }{
		{"unknown property", "infra/modules/function-app.bicep", "httpsOnly: true", "httpsOnly: true\n    httpsEverywhere: true", "no such property"},
		{"read-only property", "infra/modules/entra-app-scope.bicep", "signInAudience: 'AzureADMyOrg'\n", "signInAudience: 'AzureADMyOrg'\n  appId: '00000000-0000-0000-0000-000000000000'\n", "appId: read-only"},
		{"value outside the enum", "infra/modules/keyvault.bicep", "name: 'standard'", "name: 'basic'", "not one of the allowed values"},
		{"unknown model account property", "infra/modules/openai.bicep", "disableLocalAuth: true", "disableLocalAuth: true\n    disableKeys: true", "no such property"},
		{"read-only model account property", "infra/modules/openai.bicep", "publicNetworkAccess: 'Enabled'", "publicNetworkAccess: 'Enabled'\n    endpoint: 'https://x.openai.azure.com/'", "endpoint: read-only"},
		{"unknown model deployment property", "infra/modules/openai.bicep", "versionUpgradeOption: 'OnceNewDefaultVersionAvailable'", "versionUpgradeOption: 'OnceNewDefaultVersionAvailable'\n    autoUpgrade: true", "no such property"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := copyTree(t, "infra")
			edit(t, root, c.file, c.old, c.new)
			files, err := LoadInfra(filepath.Join(root, "infra"))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(bt.findings(files), "\n")
			if !strings.Contains(got, c.want) {
				t.Fatalf("want a finding with %q, got:\n%s", c.want, got)
			}
		})
	}
}
