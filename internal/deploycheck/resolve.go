package deploycheck

import (
	"path"
	"regexp"
	"sort"
	"strings"
)

// Infra is the parsed infra/ folder with the module wiring between its files, so an
// expression can be followed across files: a module's param to the value its caller passes,
// a module's output to the expression that produces it, a var to its value.
type Infra struct {
	Files   map[string]*File
	callers map[string][]caller // by callee path
}

type caller struct {
	file   *File
	module *Module
}

// NewInfra indexes the module references between files.
func NewInfra(files map[string]*File) *Infra {
	in := &Infra{Files: files, callers: map[string][]caller{}}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := files[n]
		for _, m := range f.Modules {
			target := path.Clean(path.Join(path.Dir(f.Path), m.Path))
			in.callers[target] = append(in.callers[target], caller{f, m})
		}
	}
	return in
}

// moduleFile returns the file a module declaration of f refers to.
func (in *Infra) moduleFile(f *File, m *Module) *File {
	return in.Files[path.Clean(path.Join(path.Dir(f.Path), m.Path))]
}

var identPath = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)((?:(?:\.|::)[A-Za-z_][A-Za-z0-9_]*)*)$`)

// Resolve returns the canonical form of a value of f: references to vars, module params and
// module outputs are replaced by what they stand for, string interpolations are resolved and
// inlined, and what remains refers to resources as "<file>#<symbol>.<path>" — except
// Microsoft Graph applications, which are named by their uniqueName ("application['…']"),
// because two declarations with one uniqueName are one application. Two values with the same
// canonical form are the same value once deployed.
func (in *Infra) Resolve(f *File, n *Node) string {
	if n == nil {
		return ""
	}
	return in.resolveExpr(f, n.Text, 0)
}

func (in *Infra) resolveExpr(f *File, text string, depth int) string {
	text = strings.TrimSpace(text)
	if depth > 32 {
		return text
	}
	if strings.HasPrefix(text, "'") && !strings.HasPrefix(text, "'''") {
		if end, err := scanString(text, 0); err == nil && end == len(text) {
			return in.resolveString(f, text, depth)
		}
	}
	m := identPath.FindStringSubmatch(text)
	if m == nil {
		return text
	}
	head, rest := m[1], m[2]
	if v, ok := f.Vars[head]; ok && v.Value != nil {
		return in.resolveExpr(f, v.Value.Text, depth+1) + rest
	}
	if p, ok := f.Params[head]; ok {
		cs := in.callers[f.Path]
		if len(cs) == 1 {
			if val := cs[0].module.Body.Get("params." + head); val != nil {
				return in.resolveExpr(cs[0].file, val.Text, depth+1) + rest
			}
		}
		if len(cs) == 0 && p.Value == nil {
			return "param:" + f.Path + ":" + head + rest
		}
		if p.Value != nil && len(cs) <= 1 {
			return in.resolveExpr(f, p.Value.Text, depth+1) + rest
		}
		return "param:" + f.Path + ":" + head + rest
	}
	if mod, ok := f.Modules[head]; ok && strings.HasPrefix(rest, ".outputs.") {
		name := strings.TrimPrefix(rest, ".outputs.")
		name, more, _ := strings.Cut(name, ".")
		if more != "" {
			more = "." + more
		}
		if target := in.moduleFile(f, mod); target != nil {
			if out, ok := target.Outputs[name]; ok {
				return in.resolveExpr(target, out.Value.Text, depth+1) + more
			}
		}
		return text
	}
	for _, r := range f.Resources {
		if r.Symbol != head {
			continue
		}
		if r.Type == "Microsoft.Graph/applications" {
			return "application[" + in.resolveExpr(f, r.Body.Get("uniqueName").textOr(""), depth+1) + "]" + rest
		}
		return f.Path + "#" + head + rest
	}
	return text
}

func (n *Node) textOr(def string) string {
	if n == nil {
		return def
	}
	return n.Text
}

// resolveString resolves the interpolations of a single-quoted literal (quotes included).
func (in *Infra) resolveString(f *File, lit string, depth int) string {
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	interps := 0
	for i := 0; i < len(body); {
		switch {
		case body[i] == '\\' && i+1 < len(body):
			b.WriteString(body[i : i+2])
			i += 2
		case strings.HasPrefix(body[i:], "${"):
			end, err := scanInterpolation(body, i+2)
			if err != nil {
				return lit
			}
			inner := in.resolveExpr(f, body[i+2:end-1], depth+1)
			if strings.HasPrefix(inner, "'") && strings.HasSuffix(inner, "'") && len(inner) >= 2 {
				b.WriteString(inner[1 : len(inner)-1])
			} else {
				b.WriteString("${" + inner + "}")
				interps++
			}
			i = end
		default:
			b.WriteByte(body[i])
			i++
		}
	}
	s := b.String()
	// '${x}' alone is x itself.
	if interps == 1 && strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") {
		if end, err := scanInterpolation(s, 2); err == nil && end == len(s) {
			return s[2 : len(s)-1]
		}
	}
	return "'" + s + "'"
}

// Literal returns the resolved value of n when it is a constant string (no interpolation left).
func (in *Infra) Literal(f *File, n *Node) (string, bool) {
	r := in.Resolve(f, n)
	if len(r) >= 2 && strings.HasPrefix(r, "'") && strings.HasSuffix(r, "'") && !strings.Contains(r, "${") {
		return unescape(r[1 : len(r)-1]), true
	}
	return "", false
}

// located is a value together with the file it is written in.
type located struct {
	file *File
	node *Node
}

// ObjectKeys returns the keys of an object value, following union(…) arguments, vars and
// module params into the objects they stand for (how app settings are assembled).
func (in *Infra) ObjectKeys(f *File, n *Node) map[string]located {
	out := map[string]located{}
	in.collectKeys(f, n, out, 0)
	return out
}

var identToken = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

func (in *Infra) collectKeys(f *File, n *Node, out map[string]located, depth int) {
	if n == nil || depth > 16 {
		return
	}
	switch n.Kind {
	case KindObject:
		for _, p := range n.Props {
			out[p.Key] = located{f, p.Value}
		}
	case KindExpr:
		for _, e := range n.Embedded {
			in.collectKeys(f, e, out, depth+1)
		}
		// Names outside the embedded objects: vars and params that hold more objects.
		text := n.Text
		for _, e := range n.Embedded {
			text = strings.Replace(text, e.Text, " ", 1)
		}
		for _, name := range identToken.FindAllString(text, -1) {
			if v, ok := f.Vars[name]; ok {
				in.collectKeys(f, v.Value, out, depth+1)
			}
			if _, ok := f.Params[name]; ok {
				for _, c := range in.callers[f.Path] {
					in.collectKeys(c.file, c.module.Body.Get("params."+name), out, depth+1)
				}
			}
		}
	}
}

// ArrayItems returns the resolved items of an array value: a literal array, a var holding
// one, or a loop `[for x in xs: x]`-shaped value whose body (at key, if given) is the loop
// variable.
func (in *Infra) ArrayItems(f *File, n *Node, key string) []string {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case KindArray:
		var out []string
		for _, it := range n.Items {
			if key != "" {
				it = it.Get(key)
			}
			out = append(out, in.Resolve(f, it))
		}
		return out
	case KindLoop:
		m := regexp.MustCompile(`^\[for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+([^:]+):`).FindStringSubmatch(n.Text)
		if m == nil {
			return nil
		}
		body := n.Body
		if key != "" {
			body = body.Get(key)
		}
		if body == nil || strings.TrimSpace(body.Text) != m[1] {
			return nil
		}
		iter := strings.TrimSpace(m[2])
		if v, ok := f.Vars[iter]; ok {
			return in.ArrayItems(f, v.Value, "")
		}
	case KindExpr:
		if v, ok := f.Vars[strings.TrimSpace(n.Text)]; ok {
			return in.ArrayItems(f, v.Value, key)
		}
		// union(['a'], [param]): the string literals it certainly holds.
		if key == "" && strings.HasPrefix(strings.TrimSpace(n.Text), "union(") {
			return regexp.MustCompile(`'[^']*'`).FindAllString(n.Text, -1)
		}
	}
	return nil
}
