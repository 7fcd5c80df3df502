package deploycheck

import (
	"errors"
	"testing"
)

func TestParseBicepReadsDeclarations(t *testing.T) {
	src := `targetScope = 'subscription'
// comment with 'quote' and { brace
@description('d')
param name string = 'x'
var tags = {
  'azd-env-name': name
  nested: { a: '${union({ b: '}' }, {}).b}' }
}
resource parent 'Microsoft.Example/things@2024-01-01' = if (true) {
  name: 'p-${name}'
  properties: {
    list: [
      'one'
      2
    ]
  }
  resource child 'children' = {
    name: 'c'
    resource grandchild 'leaves@2024-01-01' = {
      name: 'g'
    }
  }
}
resource many 'Microsoft.Example/others@2024-01-01' = [for i in range(0, 2): {
  name: 'o${i}'
}]
output o string = parent.properties.list[0]
`
	f, err := ParseBicep("x.bicep", src)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, r := range f.Resources {
		types[r.Symbol] = r.Type
	}
	want := map[string]string{
		"parent":     "Microsoft.Example/things",
		"child":      "Microsoft.Example/things/children",
		"grandchild": "Microsoft.Example/things/children/leaves",
		"many":       "Microsoft.Example/others",
	}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("%s: type %q, want %q", k, types[k], v)
		}
	}
	if s, _ := f.Vars["tags"].Value.Get("azd-env-name").Literal(); s != "" {
		t.Errorf("azd-env-name is an expression, got literal %q", s)
	}
	if n := f.Vars["tags"].Value.Get("nested.a"); n == nil || n.Kind != KindString {
		t.Errorf("nested.a = %+v, want a string with an interpolation holding braces and quotes", n)
	}
	if items := f.Resources[len(f.Resources)-2].Body.Get("properties.list"); items == nil || len(items.Items) != 2 {
		t.Errorf("properties.list = %+v", items)
	}
	if f.Params["name"].Value.Text != "'x'" || f.Outputs["o"] == nil {
		t.Errorf("params/outputs not read: %+v %+v", f.Params["name"], f.Outputs)
	}
}

func TestParseBicepReportsBrokenSource(t *testing.T) {
	for name, src := range map[string]string{
		"unterminated string":        "var a = 'x\n",
		"unterminated interpolation": "var a = 'x${y'\n",
		"unterminated comment":       "/* x\n",
		"property without colon":     "var a = {\n  b 'c'\n}\n",
		"unclosed object":            "var a = {\n  b: 'c'\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseBicep("x.bicep", src)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line == 0 {
				t.Fatalf("err = %v, want a ParseError with a line", err)
			}
		})
	}
}

func TestResolveFollowsModulesAndVars(t *testing.T) {
	main, err := ParseBicep("main.bicep", `var base = 'api://botid-'
module m 'mod/a.bicep' = {
  params: {
    id: r.properties.appId
  }
}
resource r 'Microsoft.Example/apps@1' = {
  name: 'r'
}
output uri string = m.outputs.uri
`)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := ParseBicep("mod/a.bicep", "param id string\nvar uri = 'api://botid-${id}'\noutput uri string = uri\n")
	if err != nil {
		t.Fatal(err)
	}
	in := NewInfra(map[string]*File{"main.bicep": main, "mod/a.bicep": mod})
	got := in.Resolve(main, main.Outputs["uri"].Value)
	if want := "'api://botid-${main.bicep#r.properties.appId}'"; got != want {
		t.Fatalf("resolved %s, want %s", got, want)
	}
	if got := in.resolveExpr(main, "'${base}${'x'}'", 0); got != "'api://botid-x'" {
		t.Fatalf("inlining literals: %s", got)
	}
}

func TestParseBicepReadsDecoratorsTypesAndConditions(t *testing.T) {
	src := `@description('a (nested) one')
@secure()
param pw string
@metadata({
  azd: {
    type: 'location'
  }
})
param location string = 'x'
param flag bool = false
output on bool = true
module m 'mod.bicep' = if (!flag) {
  name: 'm'
}
module n 'mod.bicep' = {
  name: 'n'
}
`
	f, err := ParseBicep("x.bicep", src)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Params["pw"].Secure() || f.Params["pw"].Type != "string" || len(f.Params["pw"].Decorators) != 2 {
		t.Errorf("pw = %+v", f.Params["pw"])
	}
	if f.Params["location"].Secure() || f.Params["location"].Type != "string" {
		t.Errorf("location = %+v", f.Params["location"])
	}
	if f.Params["flag"].Type != "bool" || f.Outputs["on"].Type != "bool" {
		t.Errorf("types: flag %q, on %q", f.Params["flag"].Type, f.Outputs["on"].Type)
	}
	if f.Modules["m"].Condition != "!flag" || f.Modules["n"].Condition != "" {
		t.Errorf("conditions: %q %q", f.Modules["m"].Condition, f.Modules["n"].Condition)
	}
}
