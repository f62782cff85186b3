package config

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // timezone names validate the same on every machine

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// decoder walks the YAML syntax tree of roster.yaml against the schema,
// collecting every problem with its position.
type decoder struct {
	src     *source
	errs    Errors
	anchors []*ast.AnchorNode // in document order
	body    ast.Node          // the document's root node
}

type pos struct{ line, col int }

// entry is one key of a mapping, its value with anchors, aliases and tags
// resolved (nil when resolving failed and was reported), and positions.
type entry struct {
	key    string
	keyPos pos
	at     pos // position of the value as written
	value  ast.Node
}

// field is one known key of a block.
type field struct {
	key      string
	required bool
	set      func(e entry) // called for a present, non-null value
}

// extensionPrefix starts top-level keys that Roster ignores, so that YAML
// anchors shared by several blocks have somewhere to live
// (x-defaults: &defaults {...}).
const extensionPrefix = "x-"

// connectorName is what a connector instance may be called: it prefixes
// entitlement names ("github:team/x").
var connectorName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (d *decoder) errorf(p pos, format string, args ...any) {
	d.errs = append(d.errs, d.src.errorAt(p.line, p.col, fmt.Sprintf(format, args...)))
}

func (d *decoder) decode(data []byte, abs string) *Config {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			d.errorf(pos{p.Line, p.Column}, "invalid YAML: %s", yamlMessage(ye.GetMessage()))
		} else {
			d.errorf(pos{1, 1}, "invalid YAML: %v", err)
		}
		return nil
	}
	var body ast.Node
	for i, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			d.errorf(nodePos(doc.Body), "only one YAML document is allowed (found document %d)", i+1)
			return nil
		}
		body = doc.Body
	}
	if body == nil {
		d.errorf(pos{1, 1}, "empty config: version, policies and connectors are required")
		return nil
	}
	d.body = body
	ast.Walk(anchorCollector{d}, body)

	top, ok := d.resolve(body).(*ast.MappingNode)
	if !ok {
		d.errorf(nodePos(body), "the config must be a mapping of keys (version, policies, connectors…), got %s", kindOf(d.resolve(body)))
		return nil
	}
	entries := d.entries(top, 0)

	// The version decides the schema: check it first, and do not report
	// unknown keys of a version we do not know.
	for _, e := range entries {
		if e.key != "version" || e.value == nil || isNull(e.value) {
			continue
		}
		if v, ok := d.int("version", e); ok && v != Version {
			d.errorf(e.at, "unsupported version %d (this Roster reads version %d)", v, Version)
			return nil
		}
	}

	c := &Config{
		Version:    Version,
		DataDir:    DefaultDataDir,
		Timezone:   DefaultTimezone,
		Location:   time.UTC,
		Lifecycle:  Lifecycle{MoverGrace: DefaultMoverGrace, Retention: DefaultRetention},
		Safety:     DefaultSafety(),
		Executor:   Executor{Concurrency: DefaultConcurrency, MaxAttempts: DefaultMaxAttempts, BackoffBase: DefaultBackoffBase, BackoffMax: DefaultBackoffMax},
		Connectors: map[string]*Connector{},
		Server:     defaultServer(),
		Path:       abs,
		Dir:        filepath.Dir(abs),
	}
	d.fields("", nodePos(top), entries, []field{
		{key: "version", required: true, set: func(entry) {}}, // checked above
		{key: "data_dir", set: func(e entry) {
			if s, ok := d.nonEmptyString("data_dir", e); ok {
				c.DataDir = s
			}
		}},
		{key: "timezone", set: func(e entry) { d.timezone(c, e) }},
		{key: "policies", required: true, set: func(e entry) { c.Policies = d.globs("policies", e, true) }},
		{key: "policy_tests", set: func(e entry) { c.PolicyTests = d.globs("policy_tests", e, false) }},
		{key: "lifecycle", set: func(e entry) {
			d.block("lifecycle", e, []field{
				{key: "mover_grace", set: func(e entry) { d.duration("lifecycle.mover_grace", e, &c.Lifecycle.MoverGrace, false) }},
				{key: "retention", set: func(e entry) { d.duration("lifecycle.retention", e, &c.Lifecycle.Retention, false) }},
			})
		}},
		{key: "safety", set: func(e entry) {
			d.block("safety", e, []field{
				{key: "suspend", set: func(e entry) { d.threshold("safety.suspend", e, &c.Safety.Suspend) }},
				{key: "revoke", set: func(e entry) { d.threshold("safety.revoke", e, &c.Safety.Revoke) }},
				{key: "delete", set: func(e entry) { d.threshold("safety.delete", e, &c.Safety.Delete) }},
			})
		}},
		{key: "executor", set: func(e entry) { d.executor(c, e) }},
		{key: "connectors", required: true, set: func(e entry) { d.connectors(c, e) }},
		{key: "server", set: func(e entry) { d.server(c, e) }},
		{key: "scim", set: func(e entry) { d.scim(c, e) }},
		{key: "admin", set: func(e entry) { d.admin(c, e) }},
	})
	d.checkAdminSecrets(c)

	if !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(c.Dir, c.DataDir)
	}
	c.DataDir = filepath.Clean(c.DataDir)
	resolveTLS(c)
	for name, cn := range c.Connectors {
		if !cn.concurrencySet {
			cn.Concurrency = c.Executor.Concurrency
		}
		c.ConnectorNames = append(c.ConnectorNames, name)
	}
	sort.Strings(c.ConnectorNames)
	return c
}

// block decodes the mapping under key e (a nested block) against fields.
// A null block leaves every default in place.
func (d *decoder) block(where string, e entry, fields []field) {
	if e.value == nil {
		return
	}
	m, ok := e.value.(*ast.MappingNode)
	if !ok {
		d.errorf(e.at, "%s must be a mapping, got %s", where, kindOf(e.value))
		return
	}
	d.fields(where, e.keyPos, d.entries(m, 0), fields)
}

// fields checks entries against the known fields of block where (dotted
// path, "" for the top level); missing required keys are reported at
// parent.
func (d *decoder) fields(where string, parent pos, entries []entry, fields []field) {
	seen := map[string]bool{}
	for _, e := range entries {
		var f *field
		for i := range fields {
			if fields[i].key == e.key {
				f = &fields[i]
				break
			}
		}
		if f == nil {
			if where == "" && strings.HasPrefix(e.key, extensionPrefix) {
				continue // a holder for YAML anchors
			}
			d.unknownKey(where, e, fields)
			continue
		}
		seen[e.key] = true
		switch {
		case e.value == nil: // already reported
		case isNull(e.value):
			if f.required {
				d.errorf(e.at, "%s must not be empty", join(where, e.key))
			}
		default:
			f.set(e)
		}
	}
	for _, f := range fields {
		if f.required && !seen[f.key] {
			if where == "" {
				d.errorf(parent, "missing required key %q", f.key)
			} else {
				d.errorf(parent, "missing required key %q in %s", f.key, where)
			}
		}
	}
}

func (d *decoder) unknownKey(where string, e entry, fields []field) {
	in := "at the top level"
	if where != "" {
		in = "in " + where
	}
	known := make([]string, len(fields))
	best, bestDist := "", 3
	for i, f := range fields {
		known[i] = f.key
		if dist := editDistance(e.key, f.key); dist < bestDist {
			best, bestDist = f.key, dist
		}
	}
	if best != "" {
		d.errorf(e.keyPos, "unknown key %q %s (did you mean %q?)", e.key, in, best)
		return
	}
	if where == "" {
		d.errorf(e.keyPos, "unknown key %q %s (known keys: %s; keys starting with %s are ignored, for anchors)", e.key, in, strings.Join(known, ", "), extensionPrefix)
		return
	}
	d.errorf(e.keyPos, "unknown key %q %s (known keys: %s)", e.key, in, strings.Join(known, ", "))
}

func (d *decoder) timezone(c *Config, e entry) {
	name, ok := d.nonEmptyString("timezone", e)
	if !ok {
		return
	}
	if name == "Local" {
		d.errorf(e.at, "timezone must be an IANA name such as America/Los_Angeles, not Local (which depends on the machine)")
		return
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		d.errorf(e.at, "unknown timezone %q (use an IANA name such as America/Los_Angeles, or UTC)", name)
		return
	}
	c.Timezone, c.Location = name, loc
}

func (d *decoder) threshold(where string, e entry, t *Threshold) {
	d.block(where, e, []field{
		{key: "max", set: func(e entry) {
			if v, ok := d.int(join(where, "max"), e); ok {
				if v < 0 {
					d.errorf(e.at, "%s must not be negative", join(where, "max"))
					return
				}
				t.Max = v
			}
		}},
		{key: "max_percent", set: func(e entry) {
			if v, ok := d.number(join(where, "max_percent"), e); ok {
				if v < 0 || v > 100 {
					d.errorf(e.at, "%s must be between 0 and 100, got %v", join(where, "max_percent"), v)
					return
				}
				t.MaxPercent = v
			}
		}},
	})
}

func (d *decoder) executor(c *Config, e entry) {
	var basePos, maxPos pos
	x := &c.Executor
	d.block("executor", e, []field{
		{key: "concurrency", set: func(e entry) { d.positive("executor.concurrency", e, &x.Concurrency) }},
		{key: "max_attempts", set: func(e entry) { d.positive("executor.max_attempts", e, &x.MaxAttempts) }},
		{key: "backoff_base", set: func(e entry) {
			if d.duration("executor.backoff_base", e, &x.BackoffBase, true) {
				basePos = e.at
			}
		}},
		{key: "backoff_max", set: func(e entry) {
			if d.duration("executor.backoff_max", e, &x.BackoffMax, true) {
				maxPos = e.at
			}
		}},
	})
	var unset pos
	if x.BackoffBase > x.BackoffMax && (basePos != unset || maxPos != unset) {
		p := maxPos
		if p == unset {
			p = basePos
		}
		d.errorf(p, "executor.backoff_base (%s) must not exceed executor.backoff_max (%s)", x.BackoffBase, x.BackoffMax)
	}
}

func (d *decoder) connectors(c *Config, e entry) {
	m, ok := e.value.(*ast.MappingNode)
	if !ok {
		d.errorf(e.at, "connectors must be a mapping of instance names to connectors, got %s", kindOf(e.value))
		return
	}
	entries := d.entries(m, 0)
	if len(entries) == 0 {
		d.errorf(e.at, "connectors must name at least one connector instance")
		return
	}
	for _, ce := range entries {
		name := ce.key
		if !connectorName.MatchString(name) {
			d.errorf(ce.keyPos, "connector name %q must be lower-case letters, digits, '-' and '_', starting with a letter or digit (it prefixes entitlements, as in github:team/x)", name)
			continue
		}
		where := "connectors." + name
		cn := &Connector{Name: name, src: d.src, line: ce.keyPos.line, col: ce.keyPos.col}
		cn.Settings = Settings{src: d.src, connector: name, line: ce.keyPos.line, col: ce.keyPos.col}
		if ce.value != nil && isNull(ce.value) {
			d.errorf(ce.keyPos, "missing required key %q in %s", "type", where)
			continue
		}
		d.block(where, ce, []field{
			{key: "type", required: true, set: func(e entry) {
				if s, ok := d.nonEmptyString(where+".type", e); ok {
					cn.Type = s
				}
			}},
			{key: "concurrency", set: func(e entry) {
				if d.positive(where+".concurrency", e, &cn.Concurrency) {
					cn.concurrencySet = true
				}
			}},
			{key: "settings", set: func(e entry) {
				if _, ok := e.value.(*ast.MappingNode); !ok {
					d.errorf(e.at, "%s.settings must be a mapping, got %s", where, kindOf(e.value))
					return
				}
				cn.Settings.node = e.value
				cn.Settings.doc = d.docBody()
				cn.Settings.line, cn.Settings.col = e.keyPos.line, e.keyPos.col
			}},
		})
		c.Connectors[name] = cn
	}
}

// docBody returns the document body, for Settings to resolve aliases.
func (d *decoder) docBody() ast.Node {
	if len(d.anchors) == 0 {
		return nil // no anchors: nothing to resolve
	}
	return d.body
}

// ---- scalars ----

func (d *decoder) nonEmptyString(path string, e entry) (string, bool) {
	var s string
	switch v := e.value.(type) {
	case *ast.StringNode:
		s = v.Value
	case *ast.LiteralNode:
		s = v.Value.Value
	default:
		d.errorf(e.at, "%s must be a string, got %s", path, kindOf(e.value))
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		d.errorf(e.at, "%s must not be empty", path)
		return "", false
	}
	return s, true
}

func (d *decoder) int(path string, e entry) (int, bool) {
	if v, ok := e.value.(*ast.IntegerNode); ok {
		switch x := v.Value.(type) {
		case int64:
			if x >= math.MinInt && x <= math.MaxInt {
				return int(x), true
			}
		case uint64:
			if x <= math.MaxInt {
				return int(x), true
			}
		}
		d.errorf(e.at, "%s is out of range", path)
		return 0, false
	}
	d.errorf(e.at, "%s must be an integer, got %s", path, kindOf(e.value))
	return 0, false
}

// positive decodes an integer that must be at least 1 into dst.
func (d *decoder) positive(path string, e entry, dst *int) bool {
	v, ok := d.int(path, e)
	if !ok {
		return false
	}
	if v < 1 {
		d.errorf(e.at, "%s must be at least 1, got %d", path, v)
		return false
	}
	*dst = v
	return true
}

func (d *decoder) number(path string, e entry) (float64, bool) {
	switch v := e.value.(type) {
	case *ast.IntegerNode:
		switch x := v.Value.(type) {
		case int64:
			return float64(x), true
		case uint64:
			return float64(x), true
		}
	case *ast.FloatNode:
		return v.Value, true
	case *ast.InfinityNode, *ast.NanNode:
		d.errorf(e.at, "%s must be a finite number", path)
		return 0, false
	}
	d.errorf(e.at, "%s must be a number, got %s", path, kindOf(e.value))
	return 0, false
}

// duration decodes a non-negative (or, with positive, non-zero) duration
// into dst and reports whether it did.
func (d *decoder) duration(path string, e entry, dst *Duration, positive bool) bool {
	var text string
	switch v := e.value.(type) {
	case *ast.StringNode:
		text = v.Value
	case *ast.IntegerNode:
		text = v.GetToken().Value
	case *ast.FloatNode:
		text = v.GetToken().Value
	default:
		d.errorf(e.at, "%s must be a duration such as 30s, 72h or 30d, got %s", path, kindOf(e.value))
		return false
	}
	v, err := ParseDuration(text)
	switch {
	case err != nil:
		d.errorf(e.at, "%s: %v", path, err)
		return false
	case v < 0:
		d.errorf(e.at, "%s must not be negative", path)
		return false
	case positive && v == 0:
		d.errorf(e.at, "%s must be greater than 0", path)
		return false
	}
	*dst = v
	return true
}

// globs decodes a list of glob patterns; required lists need at least one.
func (d *decoder) globs(path string, e entry, required bool) []string {
	seq, ok := e.value.(*ast.SequenceNode)
	if !ok {
		d.errorf(e.at, "%s must be a list of glob patterns, e.g. [%s/*.yaml], got %s", path, strings.TrimSuffix(path, "_tests")+"s", kindOf(e.value))
		return nil
	}
	if required && len(seq.Values) == 0 {
		d.errorf(e.at, "%s must list at least one glob pattern", path)
		return nil
	}
	var out []string
	for _, item := range seq.Values {
		ie := entry{at: nodePos(item), value: d.resolve(item)}
		if ie.value == nil {
			continue
		}
		s, ok := d.nonEmptyString(path+" entry", ie)
		if !ok {
			continue
		}
		if _, err := filepath.Match(s, ""); err != nil {
			d.errorf(ie.at, "%s: bad glob pattern %q: %v", path, s, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// ---- syntax tree helpers ----

type anchorCollector struct{ d *decoder }

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok {
		a.d.anchors = append(a.d.anchors, an)
	}
	return a
}

// resolve strips anchors and tags and follows aliases to the anchored
// value (the last anchor of that name before the alias). It returns nil
// after reporting an alias to no anchor.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for i := 0; i < 64 && n != nil; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			if v.Start != nil && v.Start.Value == "!!str" {
				if sc, ok := v.Value.(ast.ScalarNode); ok && !isNull(v.Value) {
					if _, isStr := sc.(*ast.StringNode); !isStr {
						return ast.String(sc.GetToken())
					}
				}
			}
			n = v.Value
		case *ast.AliasNode:
			name := v.Value.GetToken().Value
			at := v.GetToken().Position.Offset
			var target ast.Node
			for _, an := range d.anchors {
				if an.Name.GetToken().Value == name && an.GetToken().Position.Offset < at {
					target = an.Value
				}
			}
			if target == nil {
				d.errorf(nodePos(v), "alias *%s refers to no anchor defined before it", name)
				return nil
			}
			n = target
		default:
			return n
		}
	}
	if n == nil {
		return &ast.NullNode{}
	}
	d.errorf(nodePos(n), "aliases nested too deeply")
	return nil
}

// entries lists a mapping's keys in order, with "<<" merge keys expanded
// (keys written in the mapping win over merged ones, earlier merges over
// later ones).
func (d *decoder) entries(m *ast.MappingNode, depth int) []entry {
	if depth > 16 {
		d.errorf(nodePos(m), "merge keys nested too deeply")
		return nil
	}
	var out []entry
	have := map[string]bool{}
	var merges []ast.Node
	for _, mv := range m.Values {
		if mv.Key.IsMergeKey() {
			merges = append(merges, mv.Value)
			continue
		}
		name, ok := d.keyName(mv.Key)
		if !ok {
			continue
		}
		var value ast.Node = &ast.NullNode{}
		at := nodePos(mv.Key)
		if mv.Value != nil {
			value = d.resolve(mv.Value)
			at = nodePos(mv.Value)
		}
		out = append(out, entry{key: name, keyPos: nodePos(mv.Key), at: at, value: value})
		have[name] = true
	}
	for _, mn := range merges {
		var maps []*ast.MappingNode
		switch v := d.resolve(mn).(type) {
		case nil:
			continue
		case *ast.MappingNode:
			maps = append(maps, v)
		case *ast.SequenceNode:
			for _, item := range v.Values {
				if im, ok := d.resolve(item).(*ast.MappingNode); ok {
					maps = append(maps, im)
				} else {
					d.errorf(nodePos(item), "a merge key (<<) list must hold mappings")
				}
			}
		default:
			d.errorf(nodePos(mn), "a merge key (<<) needs a mapping or a list of mappings, got %s", kindOf(v))
		}
		for _, mm := range maps {
			for _, e := range d.entries(mm, depth+1) {
				if !have[e.key] {
					have[e.key] = true
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func (d *decoder) keyName(k ast.MapKeyNode) (string, bool) {
	var n ast.Node = k
	if mk, ok := n.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	n = d.resolve(n)
	switch v := n.(type) {
	case nil:
		return "", false
	case *ast.StringNode:
		return v.Value, true
	case ast.ScalarNode:
		if tk := v.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	d.errorf(nodePos(k), "a key must be a plain scalar, got %s", kindOf(n))
	return "", false
}

func isNull(n ast.Node) bool {
	_, ok := n.(*ast.NullNode)
	return ok
}

// nodePos is where a node starts in the source: a block mapping starts at
// its first key.
func nodePos(n ast.Node) pos {
	switch v := n.(type) {
	case nil:
		return pos{1, 1}
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 {
			return nodePos(v.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return nodePos(v.Key)
	case *ast.MappingKeyNode:
		return tokPos(v.Start)
	}
	return tokPos(n.GetToken())
}

func tokPos(tk *token.Token) pos {
	if tk == nil {
		return pos{1, 1}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

func kindOf(n ast.Node) string {
	switch n.(type) {
	case nil:
		return "nothing"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.NullNode:
		return "null"
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode:
		return "a mapping"
	}
	return n.Type().String()
}

func join(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}

var yamlPos = regexp.MustCompile(`\[(\d+):(\d+)\]`)

// yamlMessage rewrites go-yaml's "[line:col]" references in a message.
func yamlMessage(msg string) string {
	return yamlPos.ReplaceAllString(msg, "line $1 column $2")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
