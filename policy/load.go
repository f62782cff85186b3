package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/goccy/go-yaml/ast"

	"github.com/rosterhq/roster/connectors"
)

// Options configures Load.
type Options struct {
	// Catalog lists the connector instances and the kinds they offer.
	// Grants naming an instance, kind or role not in it are load errors.
	// A nil Catalog turns that validation off (syntax is still checked)
	// and leaves roles unresolved: use it only for syntax checks.
	Catalog Catalog
	// Location is the company timezone: an exception holds through the
	// end of its expiry day there. Nil means UTC.
	Location *time.Location
	// DefaultGrace is the removal grace of role grants that set none.
	DefaultGrace time.Duration
}

// Expand turns policy path patterns into the sorted list of absolute file
// paths they name. Relative patterns are relative to baseDir. A pattern
// that names a directory means every *.yaml and *.yml file directly in it;
// any other pattern is a filepath.Match glob ("**" is not supported). A
// pattern that matches no file is an error wrapping ErrNoFiles, because an
// empty policy set would revoke everybody's access.
func Expand(patterns []string, baseDir string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, pat := range patterns {
		if strings.Contains(pat, "**") {
			return nil, fmt.Errorf("policy: pattern %q: ** is not supported; name the directories instead", pat)
		}
		p := pat
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		var matches []string
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			for _, ext := range []string{"*.yaml", "*.yml"} {
				m, err := filepath.Glob(filepath.Join(p, ext))
				if err != nil {
					return nil, fmt.Errorf("policy: pattern %q: %w", pat, err)
				}
				matches = append(matches, m...)
			}
		} else {
			m, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("policy: pattern %q: %w", pat, err)
			}
			for _, f := range m {
				if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
					matches = append(matches, f)
				}
			}
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("policy: pattern %q (%s) matches no file: %w", pat, p, ErrNoFiles)
		}
		for _, m := range matches {
			abs, err := filepath.Abs(m)
			if err != nil {
				return nil, fmt.Errorf("policy: %s: %w", m, err)
			}
			if !seen[abs] {
				seen[abs] = true
				out = append(out, abs)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Load reads, validates and compiles a policy set: every file in files
// (typically from Expand). It is all or nothing: on any problem it returns
// a *LoadError listing every problem found in every file, and no Set.
func Load(files []string, opts Options) (*Set, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("policy: load: %w", ErrNoFiles)
	}
	var ps problems
	var srcs []*source
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			ps.list = append(ps.list, Problem{File: f, Msg: fmt.Sprintf("cannot read policy file: %v", err)})
			continue
		}
		srcs = append(srcs, newSource(f, data))
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return load(srcs, opts)
}

// LoadBytes is Load for one file already in memory; name is used in
// problem messages.
func LoadBytes(name string, data []byte, opts Options) (*Set, error) {
	return load([]*source{newSource(name, data)}, opts)
}

// loader holds the state of one Load.
type loader struct {
	env        *cel.Env
	opts       Options
	ps         problems
	roles      []*role
	exceptions []*exception
}

// role is one compiled role.
type role struct {
	name        string
	description string
	when        string
	cond        *expr // nil for birthright and abstract roles
	birthright  bool
	includes    []nameRef
	grace       time.Duration
	hasGrace    bool
	grants      []*grantRule
	file        string
	line, col   int // of the name
	src         *source
	incl        []int
}

// nameRef is a role name as written in includes, with its position.
type nameRef struct {
	name      string
	src       *source
	line, col int
}

// exception is one compiled exception.
type exception struct {
	worker  string
	reason  string
	expires time.Time // the date, at midnight UTC
	end     time.Time // the instant it stops holding (UTC)
	grants  []*grantRule
	file    string
	line    int
}

var roleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

var (
	fileKeys      = []string{"version", "roles", "exceptions"}
	roleKeys      = []string{"name", "description", "when", "birthright", "includes", "grace", "grants"}
	longGrantKeys = []string{"grant", "grace"}
	exceptionKeys = []string{"worker", "grants", "reason", "expires"}
)

func load(srcs []*source, opts Options) (*Set, error) {
	env, err := newCELEnv()
	if err != nil {
		return nil, err
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].name < srcs[j].name })
	l := &loader{env: env, opts: opts}
	for _, src := range srcs {
		l.parseFile(src)
	}
	byName := l.checkRoles()
	if err := l.ps.err(); err != nil {
		return nil, err
	}
	return newSet(srcs, l, byName), nil
}

func (l *loader) parseFile(src *source) {
	d, body := parseYAML(src, &l.ps)
	if d == nil {
		return
	}
	if body == nil {
		l.ps.add(src, 1, 1, `missing required key "version" (the file is empty; start it with "version: 1")`)
		return
	}
	keys, _, ok := d.mapping(body, "policy file", fileKeys)
	if !ok {
		return
	}
	if p, ok := keys["version"]; !ok {
		d.errAt(body, `missing required key "version" (add "version: 1")`)
	} else if _, isInt := p.val.(*ast.IntegerNode); !isInt || p.val.GetToken().Value != "1" {
		text, _ := scalarText(p.val)
		d.errAt(p.valPos(), "unsupported version %q: this Roster reads version 1", text)
	}
	if p, ok := keys["roles"]; ok && p.val != nil {
		if items, ok := d.list(p.val, "roles"); ok {
			for _, it := range items {
				l.parseRole(d, it)
			}
		}
	}
	if p, ok := keys["exceptions"]; ok && p.val != nil {
		if items, ok := d.list(p.val, "exceptions"); ok {
			for _, it := range items {
				l.parseException(d, it)
			}
		}
	}
}

func (l *loader) parseRole(d *doc, n ast.Node) {
	keys, _, ok := d.mapping(n, "role", roleKeys)
	if !ok {
		return
	}
	r := &role{file: d.src.name, src: d.src}
	valid := true
	if p, ok := keys["name"]; !ok || p.val == nil {
		d.errAt(n, `role is missing required key "name"`)
		valid = false
	} else if name, ok := d.str(p.val, "role name"); !ok {
		valid = false
	} else {
		r.name = name
		r.line, r.col = d.pos(p.val)
		if !roleNameRE.MatchString(name) {
			d.errAt(p.val, "bad role name %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit", name)
		}
	}
	if p, ok := keys["description"]; ok && p.val != nil {
		r.description, _ = d.str(p.val, "description")
	}
	if p, ok := keys["birthright"]; ok {
		if b, isBool := p.val.(*ast.BoolNode); isBool {
			r.birthright = b.Value
		} else {
			d.errAt(p.valPos(), "birthright must be true or false, not %s", kindName(p.val))
		}
		if _, hasWhen := keys["when"]; hasWhen && r.birthright {
			d.errAt(p.keyNode, "a role has either birthright: true or a when condition, not both")
		}
	}
	if p, ok := keys["when"]; ok {
		var text string
		switch v := p.val.(type) {
		case nil:
			d.errAt(p.keyNode, "when must not be empty")
		case *ast.BoolNode:
			text = v.GetToken().Value
		default:
			text, _ = d.str(p.val, "when")
		}
		if strings.TrimSpace(text) != "" {
			r.when = strings.TrimSpace(text)
			tm := d.textMap(p.val)
			x, issues := compileExpr(l.env, text, types.BoolType, "a when condition")
			for _, is := range issues {
				line, col := tm.at(runeOffset(text, is.line, is.col))
				l.ps.add(d.src, line, col, "%s", is.msg)
			}
			r.cond = x
		} else if p.val != nil {
			d.errAt(p.val, "when must not be empty")
		}
	}
	if p, ok := keys["includes"]; ok && p.val != nil {
		if items, ok := d.list(p.val, "includes"); ok {
			for _, it := range items {
				if name, ok := d.str(it, "included role name"); ok {
					line, col := d.pos(it)
					r.includes = append(r.includes, nameRef{name: name, src: d.src, line: line, col: col})
				}
			}
		}
	}
	if p, ok := keys["grace"]; ok {
		r.grace, r.hasGrace = l.duration(d, p)
	}
	if p, ok := keys["grants"]; ok && p.val != nil {
		r.grants = l.parseGrants(d, p.val)
	}
	if valid {
		l.roles = append(l.roles, r)
	}
}

func (l *loader) duration(d *doc, p pair) (time.Duration, bool) {
	if p.val == nil {
		d.errAt(p.keyNode, "grace must not be empty")
		return 0, false
	}
	text, ok := d.scalar(p.val, "grace")
	if !ok {
		return 0, false
	}
	dur, err := parseDuration(text)
	if err != nil {
		d.errAt(p.valPos(), "%v", err)
		return 0, false
	}
	return dur, true
}

// parseGrants reads a grants mapping: connector instance -> list of grants.
func (l *loader) parseGrants(d *doc, n ast.Node) []*grantRule {
	_, pairs, ok := d.mapping(n, "grants", nil)
	if !ok {
		return nil
	}
	var out []*grantRule
	for _, p := range pairs {
		app := p.key
		appKnown := true
		if l.opts.Catalog != nil {
			if _, ok := l.opts.Catalog[app]; !ok {
				appKnown = false
				msg := fmt.Sprintf("unknown connector %q (known: %s)", app, strings.Join(l.opts.Catalog.apps(), ", "))
				if s := suggest(app, l.opts.Catalog.apps()); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				d.errAt(p.keyNode, "%s", msg)
			}
		}
		if p.val == nil {
			d.errAt(p.keyNode, "grants for %q must be a list, not empty", app)
			continue
		}
		items, ok := d.list(p.val, fmt.Sprintf("grants for %q", app))
		if !ok {
			continue
		}
		for _, it := range items {
			g := l.parseGrantItem(d, it, app, appKnown)
			if g != nil {
				out = append(out, g)
			}
		}
	}
	return out
}

func (l *loader) parseGrantItem(d *doc, n ast.Node, app string, appKnown bool) *grantRule {
	switch n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		text, _ := d.str(n, "grant")
		return l.compileGrant(d, n, text, app, appKnown)
	case *ast.MappingNode, *ast.MappingValueNode:
		keys, _, ok := d.mapping(n, "grant", longGrantKeys)
		if !ok {
			return nil
		}
		p, ok := keys["grant"]
		if !ok || p.val == nil {
			d.errAt(n, `long-form grant is missing required key "grant"`)
			return nil
		}
		text, ok := d.str(p.val, "grant")
		if !ok {
			return nil
		}
		g := l.compileGrant(d, p.val, text, app, appKnown)
		if gp, ok := keys["grace"]; ok {
			grace, ok := l.duration(d, gp)
			if g != nil && ok {
				g.grace, g.hasGrace = grace, true
			}
		}
		return g
	}
	d.errAt(n, "a grant must be a string (kind/resource#role) or a mapping with grant and grace, not %s", kindName(n))
	return nil
}

func (l *loader) parseException(d *doc, n ast.Node) {
	keys, _, ok := d.mapping(n, "exception", exceptionKeys)
	if !ok {
		return
	}
	line, _ := d.pos(n)
	x := &exception{file: d.src.name, line: line}
	valid := true
	for _, k := range exceptionKeys {
		if p, ok := keys[k]; !ok || p.val == nil {
			d.errAt(n, "exception is missing required key %q", k)
			valid = false
		}
	}
	if p, ok := keys["worker"]; ok && p.val != nil {
		if s, ok := d.scalar(p.val, "worker"); ok && strings.TrimSpace(s) != "" {
			x.worker = strings.TrimSpace(s)
		} else {
			valid = false
		}
	}
	if p, ok := keys["reason"]; ok && p.val != nil {
		if s, ok := d.str(p.val, "reason"); ok && strings.TrimSpace(s) != "" {
			x.reason = strings.TrimSpace(s)
		} else {
			if ok {
				d.errAt(p.val, "reason must not be empty")
			}
			valid = false
		}
	}
	if p, ok := keys["expires"]; ok && p.val != nil {
		text, ok := d.scalar(p.val, "expires")
		if ok {
			date, err := parseDate(text)
			if err != nil {
				d.errAt(p.val, "%v", err)
				valid = false
			} else {
				x.expires = date
				y, m, dd := date.Date()
				x.end = time.Date(y, m, dd+1, 0, 0, 0, 0, l.opts.Location).UTC()
			}
		} else {
			valid = false
		}
	}
	if p, ok := keys["grants"]; ok && p.val != nil {
		x.grants = l.parseGrants(d, p.val)
	}
	if valid {
		l.exceptions = append(l.exceptions, x)
	}
}

// checkRoles finds duplicate names, unknown includes and include cycles.
func (l *loader) checkRoles() map[string]*role {
	byName := map[string]*role{}
	for _, r := range l.roles {
		if prev, dup := byName[r.name]; dup {
			l.ps.add(r.src, r.line, r.col, "duplicate role %q: also defined at %s:%d:%d", r.name, prev.file, prev.line, prev.col)
			continue
		}
		byName[r.name] = r
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, r := range l.roles {
		for _, inc := range r.includes {
			if _, ok := byName[inc.name]; !ok {
				msg := fmt.Sprintf("unknown role %q in includes", inc.name)
				if s := suggest(inc.name, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				l.ps.add(inc.src, inc.line, inc.col, "%s", msg)
			}
		}
	}
	// Cycles: depth-first search in name order, reporting each back edge.
	const (
		white = iota
		gray
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(r *role)
	visit = func(r *role) {
		color[r.name] = gray
		stack = append(stack, r.name)
		for _, inc := range r.includes {
			next, ok := byName[inc.name]
			if !ok {
				continue
			}
			switch color[next.name] {
			case white:
				visit(next)
			case gray:
				i := len(stack) - 1
				for stack[i] != next.name {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), next.name)
				l.ps.add(inc.src, inc.line, inc.col, "include cycle: %s", strings.Join(cycle, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		color[r.name] = black
	}
	for _, n := range names {
		if color[n] == white {
			visit(byName[n])
		}
	}
	return byName
}

// hashSources is the sha256 of the files, in path order, each prefixed by
// its length so that moving text between files changes the hash.
func hashSources(srcs []*source) string {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%d\n", len(s.data))
		h.Write(s.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// defaultAccount returns app's account entitlement with its default role.
func defaultAccount(c Catalog, app string) (connectors.Entitlement, int) {
	spec, _ := c.kindSpec(app, connectors.KindAccount)
	e := connectors.Entitlement{Kind: connectors.KindAccount, Role: spec.DefaultRole()}
	return e, spec.RoleRank(e.Role)
}
