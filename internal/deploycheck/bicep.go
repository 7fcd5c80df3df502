package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// This file holds a small reader for the subset of Bicep the project's templates use: top-level
// param, var, output, resource and module declarations, object and array literals, loops,
// strings with interpolation, and nested resources. Everything else (function calls,
// operators, ternaries) is kept as raw expression text; object literals inside such an
// expression are still parsed, so their keys can be inspected. It is written by hand because
// no Go library reads Bicep; the syntax itself is checked by tools/bicep-check.

// NodeKind says what a Node holds.
type NodeKind int

// Node kinds.
const (
	KindExpr   NodeKind = iota // raw expression text
	KindString                 // a single string literal (Text keeps the quotes)
	KindObject                 // object literal
	KindArray                  // array literal
	KindLoop                   // [for … : Body]
)

// Node is one parsed Bicep value.
type Node struct {
	Kind  NodeKind
	Line  int
	Text  string  // source text of the value
	Props []*Prop // KindObject
	Items []*Node // KindArray
	Body  *Node   // KindLoop
	// Embedded are the object literals found inside a KindExpr (e.g. union({…}, x)).
	Embedded []*Node
	// Resources are the resources declared inside a KindObject (nested child resources).
	Resources []*Resource
}

// Prop is one property of an object literal.
type Prop struct {
	Key   string
	Value *Node
	Line  int
}

// Get returns the value at a dotted path of object properties, or nil.
func (n *Node) Get(path string) *Node {
	cur := n
	for _, key := range strings.Split(path, ".") {
		if cur == nil {
			return nil
		}
		if cur.Kind == KindLoop {
			cur = cur.Body
		}
		if cur == nil || cur.Kind != KindObject {
			return nil
		}
		var next *Node
		for _, p := range cur.Props {
			if p.Key == key {
				next = p.Value
			}
		}
		cur = next
	}
	return cur
}

// Literal returns the content of a string literal node (interpolations kept as ${…}) and
// whether the node is one.
func (n *Node) Literal() (string, bool) {
	if n == nil || n.Kind != KindString {
		return "", false
	}
	t := n.Text
	if strings.HasPrefix(t, "'''") {
		return strings.TrimSuffix(strings.TrimPrefix(t, "'''"), "'''"), true
	}
	return unescape(t[1 : len(t)-1]), true
}

func unescape(s string) string {
	r := strings.NewReplacer(`\'`, `'`, `\\`, `\`, `\n`, "\n", `\r`, "\r", `\t`, "\t", `\$`, `$`)
	return r.Replace(s)
}

// Decl is a param, var or output declaration; Value is nil for a param without a default.
type Decl struct {
	Name  string
	Value *Node
	Line  int
	// Type is the declared type of a param or output ("string", "bool", …), as written.
	Type string
	// Decorators are the decorators written above the declaration ("@secure()", …).
	Decorators []string
}

// Secure reports whether the declaration carries the @secure() decorator.
func (d *Decl) Secure() bool {
	for _, dec := range d.Decorators {
		if strings.HasPrefix(strings.ReplaceAll(dec, " ", ""), "@secure(") || strings.HasPrefix(dec, "@sys.secure(") {
			return true
		}
	}
	return false
}

// Resource is a resource declaration; Type is the full type (child types are prefixed with
// their parent's), without the API version.
type Resource struct {
	Symbol     string
	Type       string
	APIVersion string
	Existing   bool
	Body       *Node  // the object literal (a loop's body for resource loops)
	LoopHeader string // "[for x in xs" for resource loops, else empty
	Line       int
	File       *File
}

// Module is a module declaration.
type Module struct {
	Symbol string
	Path   string // the referenced file, relative to the declaring file
	Body   *Node
	Line   int
	// Condition is the expression of `= if (…)`, or "" for a module that is always deployed.
	Condition string
}

// File is one parsed Bicep file.
type File struct {
	Path      string // slash-separated, relative to the infra folder
	Src       string
	Params    map[string]*Decl
	Vars      map[string]*Decl
	Outputs   map[string]*Decl
	Resources []*Resource // every resource, nested ones included
	Modules   map[string]*Module
}

// ParseError reports Bicep text the reader cannot follow.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParseBicepFile reads and parses the file at path; name is how it is reported.
func ParseBicepFile(path, name string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bicep: %w", err)
	}
	return ParseBicep(name, string(b))
}

// ParseBicep parses Bicep source text.
func ParseBicep(name, src string) (f *File, err error) {
	toks, err := lex(name, src)
	if err != nil {
		return nil, err
	}
	p := &parser{name: name, src: src, toks: toks}
	f = &File{Path: name, Src: src, Params: map[string]*Decl{}, Vars: map[string]*Decl{},
		Outputs: map[string]*Decl{}, Modules: map[string]*Module{}}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParseError)
			if !ok {
				panic(r)
			}
			f, err = nil, pe
		}
	}()
	p.file = f
	p.parseFile()
	return f, nil
}

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tPunct
	tNewline
	tEOF
)

type token struct {
	kind       tokKind
	text       string
	start, end int
	line       int
}

func lex(name, src string) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			toks = append(toks, token{tNewline, "\n", i, i + 1, line})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, &ParseError{name, line, "unterminated comment"}
			}
			line += strings.Count(src[i:i+2+end+2], "\n")
			i += 2 + end + 2
		case strings.HasPrefix(src[i:], "'''"):
			end := strings.Index(src[i+3:], "'''")
			if end < 0 {
				return nil, &ParseError{name, line, "unterminated multi-line string"}
			}
			j := i + 3 + end + 3
			toks = append(toks, token{tString, src[i:j], i, j, line})
			line += strings.Count(src[i:j], "\n")
			i = j
		case c == '\'':
			j, err := scanString(src, i)
			if err != nil {
				return nil, &ParseError{name, line, err.Error()}
			}
			toks = append(toks, token{tString, src[i:j], i, j, line})
			line += strings.Count(src[i:j], "\n")
			i = j
		case isIdentStart(c):
			j := i
			for j < len(src) && (isIdentStart(src[j]) || (src[j] >= '0' && src[j] <= '9')) {
				j++
			}
			toks = append(toks, token{tIdent, src[i:j], i, j, line})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			toks = append(toks, token{tNumber, src[i:j], i, j, line})
			i = j
		default:
			toks = append(toks, token{tPunct, string(c), i, i + 1, line})
			i++
		}
	}
	toks = append(toks, token{tEOF, "", len(src), len(src), line})
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// scanString returns the index just past the string literal starting at src[i] == '\”.
func scanString(src string, i int) (int, error) {
	j := i + 1
	for j < len(src) {
		switch {
		case src[j] == '\\':
			j += 2
		case src[j] == '\'':
			return j + 1, nil
		case strings.HasPrefix(src[j:], "${"):
			k, err := scanInterpolation(src, j+2)
			if err != nil {
				return 0, err
			}
			j = k
		case src[j] == '\n':
			return 0, fmt.Errorf("unterminated string")
		default:
			j++
		}
	}
	return 0, fmt.Errorf("unterminated string")
}

// scanInterpolation returns the index just past the '}' closing an interpolation whose body
// starts at src[i].
func scanInterpolation(src string, i int) (int, error) {
	depth := 0
	for i < len(src) {
		switch src[i] {
		case '\'':
			k, err := scanString(src, i)
			if err != nil {
				return 0, err
			}
			i = k
			continue
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return i + 1, nil
			}
			depth--
		}
		i++
	}
	return 0, fmt.Errorf("unterminated interpolation")
}

type parser struct {
	name string
	src  string
	toks []token
	pos  int
	file *File
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) fail(t token, format string, args ...any) {
	panic(&ParseError{p.name, t.line, fmt.Sprintf(format, args...)})
}

func (p *parser) skipNewlines() {
	for p.peek().kind == tNewline {
		p.pos++
	}
}

func (p *parser) expectPunct(s string) token {
	t := p.next()
	if t.kind != tPunct || t.text != s {
		p.fail(t, "expected %q, found %q", s, t.text)
	}
	return t
}

func (p *parser) expectIdent() token {
	t := p.next()
	if t.kind != tIdent {
		p.fail(t, "expected a name, found %q", t.text)
	}
	return t
}

// skipLine skips to the end of the current line, stepping over bracketed groups.
func (p *parser) skipLine() {
	depth := 0
	for {
		t := p.peek()
		if t.kind == tEOF || (t.kind == tNewline && depth == 0) {
			return
		}
		if t.kind == tPunct {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
		}
		p.pos++
	}
}

func (p *parser) parseFile() {
	var decorators []string
	for {
		p.skipNewlines()
		t := p.peek()
		if t.kind == tEOF {
			return
		}
		if t.kind == tPunct && t.text == "@" {
			start := t.start
			p.skipLine()
			decorators = append(decorators, strings.TrimSpace(p.src[start:p.peek().start]))
			continue
		}
		pending := decorators
		decorators = nil
		if t.kind != tIdent {
			p.fail(t, "unexpected %q at top level", t.text)
		}
		switch t.text {
		case "param":
			p.next()
			name := p.expectIdent()
			d := &Decl{Name: name.text, Line: name.line, Decorators: pending}
			typeStart := p.peek().start
			if p.skipToAssign() {
				d.Type = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p.src[typeStart:p.toks[p.pos-1].start]), "="))
				d.Value = p.parseValue()
			} else {
				d.Type = strings.TrimSpace(p.src[typeStart:p.peek().start])
			}
			p.file.Params[d.Name] = d
		case "var":
			p.next()
			name := p.expectIdent()
			p.expectPunct("=")
			p.file.Vars[name.text] = &Decl{Name: name.text, Line: name.line, Value: p.parseValue()}
		case "output":
			p.next()
			name := p.expectIdent()
			typeStart := p.peek().start
			if !p.skipToAssign() {
				p.fail(name, "output %s has no value", name.text)
			}
			typ := strings.TrimSpace(p.src[typeStart:p.toks[p.pos-1].start])
			p.file.Outputs[name.text] = &Decl{Name: name.text, Line: name.line, Type: typ, Decorators: pending, Value: p.parseValue()}
		case "resource":
			p.next()
			p.parseResource()
		case "module":
			p.next()
			sym := p.expectIdent()
			path := p.next()
			if path.kind != tString {
				p.fail(path, "module %s has no path", sym.text)
			}
			p.expectPunct("=")
			m := &Module{Symbol: sym.text, Path: strings.Trim(path.text, "'"), Line: sym.line}
			m.Condition, m.Body = p.parseConditional()
			p.file.Modules[m.Symbol] = m
		default:
			p.skipLine() // targetScope, extension, metadata, import, type, func
		}
	}
}

// skipToAssign skips a type expression up to '=' (returns true, '=' consumed) or the end of
// the line (returns false).
func (p *parser) skipToAssign() bool {
	depth := 0
	for {
		t := p.peek()
		if t.kind == tEOF || (t.kind == tNewline && depth == 0) {
			return false
		}
		if t.kind == tPunct {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			case "=":
				if depth == 0 {
					p.pos++
					return true
				}
			}
		}
		p.pos++
	}
}

// parseResource parses `sym 'type@version' [existing] = [if (…)] value`. A nested
// declaration's relative type is made full by its parent.
func (p *parser) parseResource() {
	sym := p.expectIdent()
	typ := p.next()
	if typ.kind != tString {
		p.fail(typ, "resource %s has no type", sym.text)
	}
	full := strings.Trim(typ.text, "'")
	r := &Resource{Symbol: sym.text, Line: sym.line, File: p.file}
	r.Type, r.APIVersion, _ = strings.Cut(full, "@")
	if t := p.peek(); t.kind == tIdent && t.text == "existing" {
		p.next()
		r.Existing = true
	}
	p.expectPunct("=")
	_, body := p.parseConditional()
	if body.Kind == KindLoop {
		r.LoopHeader, _, _ = strings.Cut(body.Text, ":")
		body = body.Body
	}
	r.Body = body
	p.file.Resources = append(p.file.Resources, r)
	if body != nil {
		for _, child := range body.Resources {
			if !isFullType(child.Type) {
				prefixType(child, r.Type)
			}
		}
	}
}

// isFullType reports whether a resource type names its provider namespace (Microsoft.X/…).
func isFullType(t string) bool {
	ns, _, _ := strings.Cut(t, "/")
	return strings.Contains(ns, ".")
}

// prefixType makes a child's relative type (and its own children's) full.
func prefixType(r *Resource, prefix string) {
	r.Type = prefix + "/" + r.Type
	if r.Body != nil {
		for _, c := range r.Body.Resources {
			prefixType(c, prefix)
		}
	}
}

// parseConditional parses `[if (cond)] value` and returns cond's text ("" without one).
func (p *parser) parseConditional() (string, *Node) {
	cond := ""
	if t := p.peek(); t.kind == tIdent && t.text == "if" {
		p.next()
		open := p.expectPunct("(")
		depth := 1
		for depth > 0 {
			t := p.next()
			if t.kind == tEOF {
				p.fail(t, "unterminated condition")
			}
			if t.kind == tPunct && t.text == "(" {
				depth++
			}
			if t.kind == tPunct && t.text == ")" {
				depth--
				if depth == 0 {
					cond = strings.TrimSpace(p.src[open.end:t.start])
				}
			}
		}
	}
	return cond, p.parseValue()
}

func (p *parser) parseValue() *Node {
	t := p.peek()
	if t.kind == tPunct && t.text == "{" {
		n := p.parseObject()
		return p.continueExpr(n)
	}
	if t.kind == tPunct && t.text == "[" {
		save := p.pos
		p.next()
		p.skipNewlines()
		if f := p.peek(); f.kind == tIdent && f.text == "for" {
			return p.parseLoop(t)
		}
		p.pos = save
		return p.continueExpr(p.parseArray())
	}
	return p.parseExpr()
}

// continueExpr turns a literal followed by more expression (e.g. {…}.key) into a raw expression.
func (p *parser) continueExpr(n *Node) *Node {
	t := p.peek()
	if t.kind == tEOF || t.kind == tNewline || (t.kind == tPunct && strings.Contains(",}])", t.text)) {
		return n
	}
	rest := p.parseExpr()
	rest.Embedded = append([]*Node{n}, rest.Embedded...)
	return rest
}

func (p *parser) parseObject() *Node {
	open := p.expectPunct("{")
	n := &Node{Kind: KindObject, Line: open.line}
	for {
		p.skipSeparators()
		t := p.peek()
		if t.kind == tPunct && t.text == "}" {
			p.next()
			n.Text = p.src[open.start:t.end]
			return n
		}
		if t.kind == tPunct && t.text == "@" {
			p.skipLine()
			continue
		}
		if t.kind == tIdent && t.text == "resource" {
			if nt := p.toks[p.pos+1]; nt.kind == tIdent {
				p.next()
				p.parseResource()
				// The declared child is appended last, after its own children.
				n.Resources = append(n.Resources, p.file.Resources[len(p.file.Resources)-1])
				continue
			}
		}
		var key string
		switch t.kind {
		case tIdent:
			key = t.text
		case tString:
			key = strings.Trim(t.text, "'")
		default:
			p.fail(t, "expected a property name, found %q", t.text)
		}
		p.next()
		p.expectPunct(":")
		p.skipNewlines()
		n.Props = append(n.Props, &Prop{Key: key, Line: t.line, Value: p.parseValue()})
	}
}

func (p *parser) skipSeparators() {
	for {
		t := p.peek()
		if t.kind == tNewline || (t.kind == tPunct && t.text == ",") {
			p.pos++
			continue
		}
		return
	}
}

func (p *parser) parseArray() *Node {
	open := p.expectPunct("[")
	n := &Node{Kind: KindArray, Line: open.line}
	for {
		p.skipSeparators()
		t := p.peek()
		if t.kind == tPunct && t.text == "]" {
			p.next()
			n.Text = p.src[open.start:t.end]
			return n
		}
		if t.kind == tEOF {
			p.fail(t, "unterminated array")
		}
		n.Items = append(n.Items, p.parseValue())
	}
}

// parseLoop parses the rest of `[for … : body]`; open is the '[' token, already consumed.
func (p *parser) parseLoop(open token) *Node {
	depth := 0
	for {
		t := p.next()
		if t.kind == tEOF {
			p.fail(t, "unterminated loop")
		}
		if t.kind == tPunct {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			case ":":
				if depth == 0 {
					goto body
				}
			}
		}
	}
body:
	p.skipNewlines()
	n := &Node{Kind: KindLoop, Line: open.line}
	_, n.Body = p.parseConditional()
	p.skipNewlines()
	end := p.expectPunct("]")
	n.Text = p.src[open.start:end.end]
	return n
}

// parseExpr collects a raw expression up to the end of the line, a ',' or a closing bracket
// at depth zero. Object literals inside it are parsed into Embedded.
func (p *parser) parseExpr() *Node {
	first := p.peek()
	n := &Node{Kind: KindExpr, Line: first.line}
	depth := 0
	count := 0
	last := first
	for {
		t := p.peek()
		if t.kind == tEOF {
			break
		}
		if depth == 0 && (t.kind == tNewline || (t.kind == tPunct && (t.text == "," || t.text == "}" || t.text == "]" || t.text == ")"))) {
			break
		}
		if t.kind == tPunct && t.text == "{" {
			obj := p.parseObject()
			n.Embedded = append(n.Embedded, obj)
			last = p.toks[p.pos-1]
			count++
			continue
		}
		if t.kind == tPunct {
			switch t.text {
			case "(", "[":
				depth++
			case ")", "]":
				depth--
			}
		}
		last = p.next()
		count++
	}
	if count == 0 {
		p.fail(first, "expected a value, found %q", first.text)
	}
	n.Text = strings.TrimSpace(p.src[first.start:last.end])
	if count == 1 && first.kind == tString {
		n.Kind = KindString
	}
	return n
}

// LoadInfra parses every .bicep file under dir; keys are slash-separated paths relative to dir.
func LoadInfra(dir string) (map[string]*File, error) {
	files := map[string]*File{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".bicep") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		f, err := ParseBicepFile(path, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		files[f.Path] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load infra: %w", err)
	}
	return files, nil
}
