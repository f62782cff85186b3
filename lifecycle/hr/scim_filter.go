package hr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/scim2/filter-parser/v2"
)

// errFilter is a filter Roster cannot evaluate (400 invalidFilter).
var errFilter = errors.New("unsupported filter")

// matchFilter reports whether res passes e. v resolves URN prefixes and
// says which attributes compare case-exactly; with v nil, res is one
// element of a multi-valued attribute (the inside of a value path) and
// attributes are its sub-attributes. Missing attributes never match
// (except under not); values of the wrong type do not match.
func matchFilter(e filter.Expression, res map[string]any, v *resSchema) (bool, error) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		vals, exact, err := filterValues(e.AttributePath, res, v)
		if err != nil {
			return false, err
		}
		return compareAny(vals, e.Operator, e.CompareValue, exact)
	case *filter.ValuePath:
		if e.AttributePath.SubAttribute != nil {
			return false, fmt.Errorf("%w: a value path on a sub-attribute", errFilter)
		}
		c, err := filterContainer(e.AttributePath, res, v)
		if err != nil {
			return false, err
		}
		val, _ := lookup(c, e.AttributePath.AttributeName)
		for _, x := range asList(val) {
			el, ok := x.(map[string]any)
			if !ok {
				continue
			}
			ok, err := matchFilter(e.ValueFilter, el, nil)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case *filter.LogicalExpression:
		l, err := matchFilter(e.Left, res, v)
		if err != nil {
			return false, err
		}
		switch e.Operator {
		case filter.AND:
			if !l {
				return false, nil
			}
		case filter.OR:
			if l {
				return true, nil
			}
		default:
			return false, fmt.Errorf("%w: logical operator %q", errFilter, e.Operator)
		}
		return matchFilter(e.Right, res, v)
	case *filter.NotExpression:
		ok, err := matchFilter(e.Expression, res, v)
		return !ok, err
	}
	return false, fmt.Errorf("%w: expression %T", errFilter, e)
}

// filterValues collects the values an attribute path names in res:
// several for a multi-valued attribute. exact is true for the
// attributes compared case-exactly (id, externalId).
func filterValues(p filter.AttributePath, res map[string]any, v *resSchema) (vals []any, exact bool, err error) {
	c, err := filterContainer(p, res, v)
	if err != nil {
		return nil, false, err
	}
	val, ok := lookup(c, p.AttributeName)
	if !ok || val == nil {
		return nil, false, nil
	}
	exact = v != nil && p.URI() == "" && (strings.EqualFold(p.AttributeName, "id") || strings.EqualFold(p.AttributeName, "externalId"))
	sub := p.SubAttributeName()
	for _, x := range asList(val) {
		m, isMap := x.(map[string]any)
		switch {
		case sub != "" && isMap:
			if y, ok := lookup(m, sub); ok && y != nil {
				vals = append(vals, y)
			}
		case sub != "":
			// a sub-attribute of a simple value: nothing
		case isMap:
			// a complex value compares by its "value" (RFC 7644 3.4.2.2)
			if y, ok := lookup(m, "value"); ok && y != nil {
				vals = append(vals, y)
			}
		default:
			vals = append(vals, x)
		}
	}
	return vals, exact, nil
}

// filterContainer returns the part of res that holds p's attribute: res,
// or the extension container p's URN names (nil when absent).
func filterContainer(p filter.AttributePath, res map[string]any, v *resSchema) (map[string]any, error) {
	uri := p.URI()
	if uri == "" {
		return res, nil
	}
	if v == nil {
		return nil, fmt.Errorf("%w: URN inside a value filter", errFilter)
	}
	_, key, ok := v.container(uri)
	if !ok {
		return nil, fmt.Errorf("%w: unknown schema %s", errFilter, uri)
	}
	if key == "" {
		return res, nil
	}
	c, _ := lookupMap(res, key)
	return c, nil
}

func compareAny(vals []any, op filter.CompareOperator, ref any, exact bool) (bool, error) {
	if op == filter.PR {
		for _, x := range vals {
			if s, ok := x.(string); !ok || s != "" {
				return true, nil
			}
		}
		return false, nil
	}
	if ref == nil { // "eq null": absent; "ne null": present
		switch op {
		case filter.EQ:
			return len(vals) == 0, nil
		case filter.NE:
			return len(vals) > 0, nil
		}
		return false, fmt.Errorf("%w: %s null", errFilter, op)
	}
	if s, ok := ref.(string); ok {
		ref = unescapeLiteral(s)
	}
	for _, x := range vals {
		ok, err := compare(x, op, ref, exact)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func compare(x any, op filter.CompareOperator, ref any, exact bool) (bool, error) {
	switch r := ref.(type) {
	case string:
		s, ok := x.(string)
		if !ok {
			return false, nil
		}
		if !exact {
			s, r = strings.ToLower(s), strings.ToLower(r)
		}
		switch op {
		case filter.EQ:
			return s == r, nil
		case filter.NE:
			return s != r, nil
		case filter.CO:
			return strings.Contains(s, r), nil
		case filter.SW:
			return strings.HasPrefix(s, r), nil
		case filter.EW:
			return strings.HasSuffix(s, r), nil
		case filter.GT:
			return s > r, nil
		case filter.GE:
			return s >= r, nil
		case filter.LT:
			return s < r, nil
		case filter.LE:
			return s <= r, nil
		}
	case bool:
		b, ok := asBool(x)
		if !ok {
			return false, nil
		}
		switch op {
		case filter.EQ:
			return b == r, nil
		case filter.NE:
			return b != r, nil
		}
		return false, fmt.Errorf("%w: %s on a boolean", errFilter, op)
	default:
		return false, fmt.Errorf("%w: %s %v: numbers are not supported", errFilter, op, ref)
	}
	return false, fmt.Errorf("%w: operator %q", errFilter, op)
}

// unescapeLiteral undoes JSON escapes in a filter string literal (the
// parser keeps them as written).
func unescapeLiteral(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		return s
	}
	return out
}

// normalizeLiterals rewrites single-quoted string literals
// (emails[type eq 'work']), which some clients send, into the
// double-quoted form the SCIM grammar has. Text inside double quotes is
// left alone.
func normalizeLiterals(s string) string {
	if !strings.Contains(s, "'") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			j := endOfString(s, i)
			b.WriteString(s[i:j])
			i = j - 1
		case '\'':
			k := strings.IndexByte(s[i+1:], '\'')
			if k < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			q, _ := json.Marshal(s[i+1 : i+1+k])
			b.Write(q)
			i += k + 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// endOfString returns the index just past the double-quoted string that
// starts at s[i] (len(s) if it is not closed).
func endOfString(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(s)
}

// normalizeFilter rewrites a list filter into the grammar of RFC 7644
// where clients stray from it:
//   - single-quoted literals become double-quoted (normalizeLiterals);
//   - a comparison on a sub-attribute after a value path, which Entra ID
//     sends as `emails[type eq "work"].value eq "a@b.c"` and the grammar
//     lacks, becomes `emails[type eq "work" and value eq "a@b.c"]`. A
//     value filter with "or" in it is left alone (the grammar has no
//     parentheses there), and so fails as an invalid filter.
func normalizeFilter(f string) string {
	f = normalizeLiterals(f)
	if !strings.Contains(f, "].") {
		return f
	}
	var b strings.Builder
	open := -1     // index in b of the current '[', -1 outside brackets
	hasOr := false // the current bracket holds an "or"
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c == '"':
			j := endOfString(f, i)
			b.WriteString(f[i:j])
			i = j - 1
			continue
		case c == '[':
			open, hasOr = b.Len(), false
		case c == ']' && open >= 0:
			if tail, n := subComparison(f[i+1:]); n > 0 && !hasOr {
				b.WriteString(" and " + tail + "]")
				i += n
				open = -1
				continue
			}
			open = -1
		case open >= 0 && (c == 'o' || c == 'O') && i > 0 && f[i-1] == ' ' && len(f) > i+2 &&
			(f[i+1] == 'r' || f[i+1] == 'R') && f[i+2] == ' ':
			hasOr = true
		}
		b.WriteByte(c)
	}
	return b.String()
}

// subComparison parses `.name op value` (or `.name pr`) at the start of
// s and returns it as `name op value` with the number of bytes it
// spans; n is 0 when s does not start with one.
func subComparison(s string) (tail string, n int) {
	if len(s) < 2 || s[0] != '.' {
		return "", 0
	}
	i := 1
	for i < len(s) && (isAlnum(s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '$') {
		i++
	}
	name := s[1:i]
	if name == "" || !isAlpha(name[0]) {
		return "", 0
	}
	j := i
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if j == i || j+2 > len(s) {
		return "", 0
	}
	op := strings.ToLower(s[j : j+2])
	k := j + 2
	if k < len(s) && s[k] != ' ' {
		return "", 0
	}
	if op == "pr" {
		return name + " pr", k
	}
	switch op {
	case "eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le":
	default:
		return "", 0
	}
	for k < len(s) && s[k] == ' ' {
		k++
	}
	if k >= len(s) {
		return "", 0
	}
	var end int
	if s[k] == '"' {
		end = endOfString(s, k)
	} else {
		end = k
		for end < len(s) && s[end] != ' ' && s[end] != ')' {
			end++
		}
	}
	if end == k {
		return "", 0
	}
	return name + " " + op + " " + s[k:end], end
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isAlnum(c byte) bool { return isAlpha(c) || (c >= '0' && c <= '9') }
