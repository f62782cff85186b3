package policy

import (
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// doc walks the YAML AST of one file, keeping every node's position so that
// problems point at the line and column they concern. It decodes strictly:
// unknown keys and wrong types are problems.
type doc struct {
	src     *source
	ps      *problems
	anchors map[string]ast.Node
}

// parseYAML parses src into its single document body. It returns nil (after
// recording a problem) when the file is not valid YAML, and nil without a
// problem when the file is empty.
func parseYAML(src *source, ps *problems) (*doc, ast.Node) {
	d := &doc{src: src, ps: ps, anchors: map[string]ast.Node{}}
	f, err := parser.ParseBytes(src.data, 0)
	if err != nil {
		var se *yaml.SyntaxError
		if errors.As(err, &se) && se.Token != nil {
			line := se.Token.Position.Line
			hint := ""
			if strings.Contains(src.line(line), "${") {
				hint = ` (inside [...] or {...}, put a grant that contains ${...} in quotes: "team/${worker.team}")`
			}
			ps.add(src, line, se.Token.Position.Column, "YAML syntax error: %s%s", se.Message, hint)
		} else {
			ps.add(src, 1, 1, "YAML syntax error: %v", err)
		}
		return nil, nil
	}
	var body ast.Node
	for i, dn := range f.Docs {
		if dn == nil || dn.Body == nil {
			continue
		}
		if body != nil {
			line, col := d.pos(dn.Body)
			ps.add(src, line, col, "only one YAML document per file is allowed (found document %d)", i+1)
			break
		}
		body = dn.Body
	}
	if body != nil {
		ast.Walk(anchorCollector(d.anchors), body)
	}
	return d, body
}

type anchorCollector map[string]ast.Node

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil {
		a[an.Name.GetToken().Value] = an.Value
	}
	return a
}

// resolve unwraps anchors, tags and aliases; it returns nil for an alias
// to an unknown anchor (after recording a problem).
func (d *doc) resolve(n ast.Node) ast.Node {
	for i := 0; i < 100 && n != nil; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			name := ""
			if v.Value != nil {
				name = v.Value.GetToken().Value
			}
			t, ok := d.anchors[name]
			if !ok {
				line, col := d.pos(v)
				d.ps.add(d.src, line, col, "unknown YAML alias *%s", name)
				return nil
			}
			n = t
		default:
			return n
		}
	}
	return n
}

// pos returns the 1-based line and column where n starts.
func (d *doc) pos(n ast.Node) (int, int) {
	switch v := n.(type) {
	case nil:
		return 0, 0
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 {
			return d.pos(v.Values[0])
		}
	case *ast.MappingValueNode:
		if v.Key != nil {
			return d.pos(v.Key)
		}
	case *ast.LiteralNode:
		if v.Start != nil {
			return v.Start.Position.Line, v.Start.Position.Column
		}
	case *ast.AnchorNode:
		if v.Start != nil {
			return v.Start.Position.Line, v.Start.Position.Column
		}
	case *ast.NullNode:
		// An empty value: goccy places it just after the colon.
		tk := v.GetToken()
		if tk != nil {
			return tk.Position.Line, tk.Position.Column
		}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

func (d *doc) errAt(n ast.Node, format string, args ...any) {
	line, col := d.pos(n)
	d.ps.add(d.src, line, col, format, args...)
}

// kindName describes a node's YAML type for messages.
func kindName(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "empty"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.IntegerNode:
		return "a number"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	}
	return "a " + strings.ToLower(n.Type().String())
}

// pair is one key: value of a mapping.
type pair struct {
	key     string
	keyNode ast.Node
	val     ast.Node // resolved; nil for an empty value
	rawVal  ast.Node // as written, for positions of empty values
}

// mapping returns the pairs of a mapping node, checking keys against
// allowed (strict decoding). what names the mapping in messages ("role").
// ok is false when n is not a mapping (a problem is recorded).
func (d *doc) mapping(n ast.Node, what string, allowed []string) (map[string]pair, []pair, bool) {
	n = d.resolve(n)
	var values []*ast.MappingValueNode
	switch v := n.(type) {
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	default:
		d.errAt(n, "%s must be a mapping, not %s", what, kindName(n))
		return nil, nil, false
	}
	byKey := map[string]pair{}
	var order []pair
	for _, mv := range values {
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			d.errAt(mv.Key, "YAML merge keys (<<) are not supported in %s", what)
			continue
		}
		keyNode := d.resolve(mv.Key)
		key, ok := scalarText(keyNode)
		if !ok {
			d.errAt(mv.Key, "%s key must be a string, not %s", what, kindName(keyNode))
			continue
		}
		p := pair{key: key, keyNode: mv.Key, rawVal: mv.Value}
		if _, isNull := mv.Value.(*ast.NullNode); !isNull && mv.Value != nil {
			p.val = d.resolve(mv.Value)
			if _, isNull := p.val.(*ast.NullNode); isNull {
				p.val = nil
			}
		}
		if allowed != nil && !contains(allowed, key) {
			msg := "unknown key %q in %s (allowed: %s)"
			if s := suggest(key, allowed); s != "" {
				d.errAt(mv.Key, msg+"; did you mean %q?", key, what, strings.Join(allowed, ", "), s)
			} else {
				d.errAt(mv.Key, msg, key, what, strings.Join(allowed, ", "))
			}
			continue
		}
		if prev, dup := byKey[key]; dup {
			line, col := d.pos(prev.keyNode)
			d.errAt(mv.Key, "duplicate key %q in %s (first at line %d:%d)", key, what, line, col)
			continue
		}
		byKey[key] = p
		order = append(order, p)
	}
	return byKey, order, true
}

// valPos is the node to point at for p's value (the key when it is empty).
func (p pair) valPos() ast.Node {
	if p.val != nil {
		return p.val
	}
	return p.keyNode
}

// list returns the items of a sequence node (resolved). ok is false when n
// is not a list (a problem is recorded).
func (d *doc) list(n ast.Node, what string) ([]ast.Node, bool) {
	n = d.resolve(n)
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errAt(n, "%s must be a list, not %s", what, kindName(n))
		return nil, false
	}
	out := make([]ast.Node, 0, len(seq.Values))
	for _, v := range seq.Values {
		out = append(out, d.resolve(v))
	}
	return out, true
}

// str returns the text of a string scalar (plain, quoted or block).
func (d *doc) str(n ast.Node, what string) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	}
	d.errAt(n, "%s must be a string, not %s", what, kindName(n))
	return "", false
}

// scalarText returns the text of any scalar as written (numbers, booleans
// and dates are scalars too).
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	return "", false
}

// scalar returns the text of any scalar; what names it in messages.
func (d *doc) scalar(n ast.Node, what string) (string, bool) {
	s, ok := scalarText(n)
	if !ok {
		d.errAt(n, "%s must be a single value, not %s", what, kindName(n))
	}
	return s, ok
}

// textMap maps rune offsets inside a scalar's value back to source
// positions, so that errors found inside an expression (CEL) point at the
// right column of the file. It is exact for single-line plain and quoted
// scalars and for block scalars; for multi-line flow scalars and quoted
// strings with escapes it is a close approximation.
type textMap struct {
	segs []segment
}

type segment struct {
	line, col, n int // 1-based line and column of the segment's first rune; its length in runes
}

func (d *doc) textMap(n ast.Node) textMap {
	var tm textMap
	switch v := n.(type) {
	case *ast.LiteralNode:
		start := v.Start.Position.Line
		indent := -1
		for l := start + 1; l <= len(d.src.lines); l++ {
			text := d.src.line(l)
			if strings.TrimSpace(text) == "" {
				if indent >= 0 {
					tm.segs = append(tm.segs, segment{line: l, col: indent + 1, n: 0})
				}
				continue
			}
			ind := len(text) - len(strings.TrimLeft(text, " "))
			if indent < 0 {
				indent = ind
			} else if ind < indent {
				break
			}
			tm.segs = append(tm.segs, segment{line: l, col: indent + 1, n: utf8.RuneCountInString(text[indent:])})
		}
	case *ast.StringNode:
		tk := v.Token
		line, col := tk.Position.Line, tk.Position.Column
		quoted := tk.Type == token.DoubleQuoteType || tk.Type == token.SingleQuoteType
		if quoted {
			col++
		}
		total := utf8.RuneCountInString(v.Value)
		first := []rune(d.src.line(line))
		avail := len(first) - (col - 1)
		if avail < 0 {
			avail = 0
		}
		if total <= avail || line >= len(d.src.lines) {
			tm.segs = append(tm.segs, segment{line: line, col: col, n: total})
			return tm
		}
		tm.segs = append(tm.segs, segment{line: line, col: col, n: avail})
		left := total - avail - 1
		for l := line + 1; l <= len(d.src.lines) && left > 0; l++ {
			text := d.src.line(l)
			trimmed := strings.TrimLeft(text, " \t")
			c := len(text) - len(trimmed) + 1
			k := utf8.RuneCountInString(strings.TrimRight(trimmed, " \t"))
			tm.segs = append(tm.segs, segment{line: l, col: c, n: k})
			left -= k + 1
		}
	default:
		line, col := d.pos(n)
		tm.segs = append(tm.segs, segment{line: line, col: col})
	}
	return tm
}

// at returns the source position of rune offset off within the value.
func (tm textMap) at(off int) (int, int) {
	if len(tm.segs) == 0 {
		return 0, 0
	}
	for _, s := range tm.segs {
		if off <= s.n {
			return s.line, s.col + off
		}
		off -= s.n + 1
	}
	last := tm.segs[len(tm.segs)-1]
	return last.line, last.col + last.n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the candidate closest to s (edit distance at most 2, or
// a third of its length), or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	if l := len(s) / 3; l > bestD {
		bestD = l
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
