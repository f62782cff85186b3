package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"github.com/goccy/go-yaml/ast"

	"github.com/rosterhq/roster/connectors"
)

// Catalog says which connector instances exist and which entitlement kinds
// each offers: instance name -> kinds (the account is implicit; a KindSpec
// named "account" declares account-level roles). Grants are validated
// against it at load and roles are resolved with it.
type Catalog map[string][]connectors.KindSpec

// kindSpec returns the spec of kind in app. The account is always offered,
// with the roles of a KindSpec named "account" if the app declares one.
func (c Catalog) kindSpec(app, kind string) (connectors.KindSpec, bool) {
	for _, k := range c[app] {
		if k.Name == kind {
			return k, true
		}
	}
	if kind == connectors.KindAccount {
		return connectors.KindSpec{Name: connectors.KindAccount}, true
	}
	return connectors.KindSpec{}, false
}

func (c Catalog) apps() []string {
	out := make([]string, 0, len(c))
	for a := range c {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func (c Catalog) kinds(app string) []string {
	out := []string{connectors.KindAccount}
	for _, k := range c[app] {
		if k.Name != connectors.KindAccount {
			out = append(out, k.Name)
		}
	}
	return out
}

// grantRule is one compiled grant of a role or an exception.
type grantRule struct {
	app string
	// ent is the entitlement with its role resolved; when the resource is
	// a template, ent.Resource is "" and parts builds it per worker.
	ent   connectors.Entitlement
	parts []tplPart
	rank  int // ent.Role's rank in the kind's roles; -1 when the kind has none
	// ord is the position of a static grant's (app, kind, resource) among
	// all static grants of the set, times two (see Set.ordOf); -1 for a
	// templated grant, whose position is found per worker.
	ord int
	// src is the one Source this rule gives (shared, read-only);
	// implied is the source of the account it implies (static rules).
	src      []Source
	implied  []Source
	grace    time.Duration
	hasGrace bool
	text     string
	file     string
	line     int
}

// tplPart is a literal piece of a templated resource, or an expression.
type tplPart struct {
	lit string
	x   *expr
}

// placeholder stands for a ${...} while the entitlement text is parsed.
const placeholder = "\x00"

// tplSpan is one ${...} found in a grant's text.
type tplSpan struct {
	src      string // the expression inside ${ }
	startB   int    // byte offset of "${"
	exprOffR int    // rune offset of the expression's first rune
}

// splitTemplate finds the ${...} parts of s. Braces nest and quoted
// strings inside an expression may hold braces. It returns s with every
// part replaced by placeholder.
func splitTemplate(s string) (string, []tplSpan, string, int) {
	var out strings.Builder
	var spans []tplSpan
	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			out.WriteString(s[i:])
			break
		}
		start := i + j
		out.WriteString(s[i:start])
		depth, k := 1, start+2
		var quote byte
		for ; k < len(s) && depth > 0; k++ {
			c := s[k]
			switch {
			case quote != 0:
				if c == '\\' {
					k++
				} else if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '{':
				depth++
			case c == '}':
				depth--
			}
		}
		if depth > 0 {
			return "", nil, "unterminated ${ in grant (missing })", utf8.RuneCountInString(s[:start])
		}
		inner := s[start+2 : k-1]
		if strings.TrimSpace(inner) == "" {
			return "", nil, "empty ${} in grant", utf8.RuneCountInString(s[:start])
		}
		spans = append(spans, tplSpan{src: inner, startB: start, exprOffR: utf8.RuneCountInString(s[:start+2])})
		out.WriteString(placeholder)
		i = k
	}
	return out.String(), spans, "", 0
}

// compileGrant parses, validates and compiles one grant text found at
// node (a string scalar) for app. appKnown is false when the app is not
// in the catalog (already reported): only the syntax is checked then.
func (l *loader) compileGrant(d *doc, node ast.Node, text, app string, appKnown bool) *grantRule {
	tm := d.textMap(node)
	report := func(off int, format string, args ...any) {
		line, col := tm.at(off)
		l.ps.add(d.src, line, col, format, args...)
	}
	line, _ := tm.at(0)
	g := &grantRule{app: app, text: text, file: d.src.name, line: line}
	flat, spans, msg, off := splitTemplate(text)
	if msg != "" {
		report(off, "%s", msg)
		return nil
	}
	ent, err := connectors.ParseEntitlement(flat)
	if err != nil {
		m := strings.ReplaceAll(err.Error(), strconv.Quote(flat), strconv.Quote(text))
		m = strings.ReplaceAll(m, strconv.Quote(strings.TrimSpace(flat)), strconv.Quote(strings.TrimSpace(text)))
		report(0, "bad grant: %s", m)
		return nil
	}
	if strings.Contains(ent.Kind, placeholder) || strings.Contains(ent.Role, placeholder) {
		report(spans[0].exprOffR-2, "a template ${...} may appear only in the resource, not in the kind or the role: %q", text)
		return nil
	}
	g.ent, g.rank = ent, -1
	if l.opts.Catalog != nil && appKnown {
		spec, ok := l.opts.Catalog.kindSpec(app, ent.Kind)
		if !ok {
			msg := fmt.Sprintf("connector %q has no entitlement kind %q (it offers: %s)", app, ent.Kind, strings.Join(l.opts.Catalog.kinds(app), ", "))
			if s := suggest(ent.Kind, l.opts.Catalog.kinds(app)); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			report(0, "%s", msg)
			return nil
		}
		switch {
		case ent.Role == "":
			g.ent.Role = spec.DefaultRole()
		case len(spec.Roles) == 0:
			report(0, "%s takes no role, but the grant names role %q", kindDesc(app, ent.Kind), ent.Role)
			return nil
		case spec.RoleRank(ent.Role) < 0:
			report(0, "role %q is not a role of %s (roles, least to most privileged: %s)", ent.Role, kindDesc(app, ent.Kind), strings.Join(spec.Roles, ", "))
			return nil
		}
		g.rank = spec.RoleRank(g.ent.Role)
	}
	if len(spans) == 0 {
		return g
	}
	// Build the resource's parts and compile each expression.
	lits := strings.Split(ent.Resource, placeholder)
	g.ent.Resource = ""
	ok := true
	for i, sp := range spans {
		if lits[i] != "" {
			g.parts = append(g.parts, tplPart{lit: lits[i]})
		}
		x, issues := compileExpr(l.env, sp.src, types.StringType, "a ${...} template")
		for _, is := range issues {
			report(sp.exprOffR+runeOffset(sp.src, is.line, is.col), "%s", is.msg)
			ok = false
		}
		g.parts = append(g.parts, tplPart{x: x})
	}
	if last := lits[len(lits)-1]; last != "" {
		g.parts = append(g.parts, tplPart{lit: last})
	}
	if !ok {
		return nil
	}
	return g
}

func kindDesc(app, kind string) string {
	if kind == connectors.KindAccount {
		return fmt.Sprintf("the account of connector %q", app)
	}
	return fmt.Sprintf("kind %q of connector %q", kind, app)
}

// runeOffset converts a CEL location (1-based line, 0-based rune column)
// inside text into a rune offset from the start of text.
func runeOffset(text string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		off += utf8.RuneCountInString(text[:i]) + 1
		text = text[i+1:]
	}
	return off + col
}

// parseDuration reads Go duration syntax ("72h", "90m", "1h30m") plus a
// "d" unit for days of 24 hours ("7d", "1d12h"). Negative durations are
// rejected.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] == '.' || (rest[j] >= '0' && rest[j] <= '9')) {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		if num == "" || unit == "" {
			return 0, fmt.Errorf("bad duration %q: want a number and a unit, as in 72h, 30m or 7d", s)
		}
		if unit == "d" {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("bad duration %q: %w", s, err)
			}
			total += time.Duration(f * float64(24*time.Hour))
		} else {
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("bad duration %q: unknown unit %q (use ns, us, ms, s, m, h or d)", s, unit)
			}
			total += d
		}
		rest = rest[j:]
	}
	return total, nil
}

// dateLayout is the one date format of policy files.
const dateLayout = "2006-01-02"

// parseDate reads a calendar date (2026-12-31).
func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(dateLayout, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("bad date %q: want a date like 2026-12-31", s)
	}
	return t, nil
}

// parseTime reads a date (midnight UTC) or an RFC 3339 timestamp.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(dateLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("bad date %q: want a date like 2026-06-01 or a timestamp like 2026-06-01T09:00:00Z", s)
}
