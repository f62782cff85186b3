package hr

import (
	"reflect"
	"sort"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// applyPatch carries out PATCH operations (RFC 7644 3.5.2) on a SCIM
// resource in place. The operations come from elimity-com/scim, which
// parsed and type-checked them but applies none. On an error the
// resource may be half-changed: the caller throws it away.
//
// Beyond the RFC, for the clients that exist:
//   - "add" on a single-valued attribute that is set replaces it;
//   - "remove" on a multi-valued attribute with a value removes only the
//     listed values (Entra ID removes group members this way);
//   - "add"/"replace" through a value path that matches nothing appends a
//     value built from the path's equality terms (Entra ID replaces
//     `emails[type eq "work"].value` on a user who has none);
//   - a path-less value may hold dotted keys ("name.givenName"), full-URN
//     keys ("urn:…:enterprise:2.0:User:department") and extension
//     containers.
func applyPatch(doc map[string]any, v *resSchema, ops []scim.PatchOperation) error {
	for _, op := range ops {
		o := strings.ToLower(op.Op)
		switch o {
		case scim.PatchOperationAdd, scim.PatchOperationReplace, scim.PatchOperationRemove:
		default:
			return invalidValue("unknown PATCH op " + op.Op)
		}
		if op.Path != nil {
			if err := applyPath(doc, v, nil, *op.Path, o, op.Value); err != nil {
				return err
			}
			continue
		}
		if o == scim.PatchOperationRemove {
			return scimerrors.ScimErrorNoTarget
		}
		m, ok := op.Value.(map[string]any)
		if !ok {
			return invalidValue("a PATCH operation without a path needs an object value")
		}
		for _, k := range sortedKeys(m) {
			if ext, ok := v.extension(k); ok {
				inner, ok := m[k].(map[string]any)
				if !ok {
					return invalidValue(ext.ID + " needs an object value")
				}
				for _, ik := range sortedKeys(inner) {
					p, err := filter.ParsePath([]byte(normalizeLiterals(ik)))
					if err != nil {
						return invalidPath(ik)
					}
					if err := applyPath(doc, v, ext, p, o, inner[ik]); err != nil {
						return err
					}
				}
				continue
			}
			p, err := filter.ParsePath([]byte(normalizeLiterals(k)))
			if err != nil {
				return invalidPath(k)
			}
			if err := applyPath(doc, v, nil, p, o, m[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyPath applies one operation at path p; in, when set, is the
// extension a path-less value's container named.
func applyPath(doc map[string]any, v *resSchema, in *schema.Schema, p filter.Path, op string, value any) error {
	sc, key := in, ""
	if in != nil {
		key = in.ID
		if uri := p.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, in.ID) {
			return invalidPath(p.String())
		}
	} else {
		var ok bool
		if sc, key, ok = v.container(p.AttributePath.URI()); !ok {
			return invalidPath(p.String())
		}
	}
	attr, ok := attribute(sc, p.AttributePath.AttributeName)
	if !ok {
		return invalidPath(p.String())
	}
	if attr.Mutability() == "readOnly" {
		return scimerrors.ScimErrorMutability
	}
	c := doc
	if key != "" {
		c, _ = lookupMap(doc, key)
		if c == nil {
			if op == scim.PatchOperationRemove {
				return nil
			}
			c = map[string]any{}
			put(doc, key, c)
		}
	}
	var err error
	switch {
	case p.ValueExpression != nil:
		err = applyFiltered(c, attr, p.ValueExpression, p.SubAttributeName(), op, value)
	case p.AttributePath.SubAttribute != nil:
		if p.SubAttribute != nil {
			return invalidPath(p.String())
		}
		err = applySub(c, attr, p.AttributePath.SubAttributeName(), op, value)
	default:
		err = applyWhole(c, attr, op, value)
	}
	if key != "" && len(c) == 0 {
		del(doc, key)
	}
	return err
}

// applyWhole applies an operation to a whole attribute.
func applyWhole(c map[string]any, attr schema.CoreAttribute, op string, value any) error {
	name := attr.Name()
	cur, _ := lookup(c, name)
	switch {
	case attr.MultiValued():
		list := asList(cur)
		switch op {
		case scim.PatchOperationAdd:
			for _, x := range asList(value) {
				if indexOf(list, x) < 0 {
					list = append(list, x)
				}
			}
		case scim.PatchOperationReplace:
			list = asList(value)
		case scim.PatchOperationRemove:
			if value == nil {
				list = nil
				break
			}
			for _, x := range asList(value) {
				for i := indexOf(list, x); i >= 0; i = indexOf(list, x) {
					list = append(list[:i:i], list[i+1:]...)
				}
			}
		}
		if op != scim.PatchOperationRemove {
			list = onePrimary(list, asList(value))
		}
		putOrDelete(c, name, list)
	case attr.AttributeType() == "complex":
		if op == scim.PatchOperationRemove {
			del(c, name)
			return nil
		}
		vm, ok := value.(map[string]any)
		if !ok {
			return invalidValue(name + " needs an object value")
		}
		m := cloneMap(cur)
		for _, k := range sortedKeys(vm) {
			sa, ok := subAttribute(attr, k)
			if !ok || sa.Mutability() == "readOnly" {
				continue
			}
			if vm[k] == nil {
				del(m, sa.Name())
			} else {
				put(m, sa.Name(), vm[k])
			}
		}
		putOrDelete(c, name, m)
	default:
		if op == scim.PatchOperationRemove || value == nil {
			del(c, name)
			return nil
		}
		put(c, name, value)
	}
	return nil
}

// applySub applies an operation to attr.sub: of the one value of a
// complex attribute, or of every value of a multi-valued one.
func applySub(c map[string]any, attr schema.CoreAttribute, sub string, op string, value any) error {
	sa, ok := subAttribute(attr, sub)
	if !ok {
		return invalidPath(attr.Name() + "." + sub)
	}
	if sa.Mutability() == "readOnly" {
		return scimerrors.ScimErrorMutability
	}
	name, sub := attr.Name(), sa.Name()
	cur, _ := lookup(c, name)
	if op == scim.PatchOperationRemove {
		value = nil
	}
	if !attr.MultiValued() {
		m := cloneMap(cur)
		if value == nil {
			del(m, sub)
		} else {
			put(m, sub, value)
		}
		putOrDelete(c, name, m)
		return nil
	}
	list := cloneList(cur)
	if value != nil && len(list) == 0 {
		list = []any{map[string]any{sub: value}}
	}
	out := list[:0]
	for _, x := range list {
		el, ok := x.(map[string]any)
		if !ok {
			continue
		}
		if value == nil {
			del(el, sub)
			if strings.EqualFold(sub, "value") {
				continue // a value without its value is gone
			}
		} else {
			put(el, sub, value)
		}
		out = append(out, el)
	}
	putOrDelete(c, name, out)
	return nil
}

// applyFiltered applies an operation to the values of a multi-valued
// attribute a value path selects, or to their sub-attribute sub.
func applyFiltered(c map[string]any, attr schema.CoreAttribute, sel filter.Expression, sub string, op string, value any) error {
	if !attr.MultiValued() {
		return invalidPath(attr.Name() + "[…]: not multi-valued")
	}
	name := attr.Name()
	if sub != "" {
		sa, ok := subAttribute(attr, sub)
		if !ok {
			return invalidPath(name + "[…]." + sub)
		}
		if sa.Mutability() == "readOnly" {
			return scimerrors.ScimErrorMutability
		}
		sub = sa.Name()
	}
	cur, _ := lookup(c, name)
	list := cloneList(cur)
	var matched []int
	for i, x := range list {
		el, ok := x.(map[string]any)
		if !ok {
			continue
		}
		ok, err := matchFilter(sel, el, nil)
		if err != nil {
			return scimerrors.ScimErrorInvalidFilter
		}
		if ok {
			matched = append(matched, i)
		}
	}
	if op == scim.PatchOperationRemove || value == nil {
		drop := map[int]bool{}
		for _, i := range matched {
			el := list[i].(map[string]any)
			if sub == "" || strings.EqualFold(sub, "value") {
				drop[i] = true
			} else {
				del(el, sub)
			}
		}
		out := list[:0]
		for i, x := range list {
			if !drop[i] {
				out = append(out, x)
			}
		}
		putOrDelete(c, name, out)
		return nil
	}
	var vm map[string]any
	if sub == "" {
		var ok bool
		if vm, ok = value.(map[string]any); !ok {
			return invalidValue(name + "[…] needs an object value")
		}
	}
	if len(matched) == 0 {
		terms, ok := eqTerms(sel, attr)
		if !ok {
			return scimerrors.ScimErrorNoTarget
		}
		el := map[string]any{}
		for _, t := range terms {
			el[t.name] = t.value
		}
		list = append(list, el)
		matched = []int{len(list) - 1}
	}
	for _, i := range matched {
		el := list[i].(map[string]any)
		if sub != "" {
			put(el, sub, value)
			continue
		}
		if op == scim.PatchOperationReplace { // the matched value is replaced, keeping what selected it
			if terms, ok := eqTerms(sel, attr); ok {
				el = map[string]any{}
				for _, t := range terms {
					el[t.name] = t.value
				}
				list[i] = el
			}
		}
		for _, k := range sortedKeys(vm) {
			sa, ok := subAttribute(attr, k)
			if !ok || vm[k] == nil {
				continue
			}
			put(el, sa.Name(), vm[k])
		}
	}
	putOrDelete(c, name, list)
	return nil
}

// onePrimary keeps at most one value marked primary (RFC 7643 2.4): when
// one of the values just written is primary, the others are not.
func onePrimary(list, written []any) []any {
	var primary map[string]any
	for _, x := range written {
		if m, ok := x.(map[string]any); ok {
			if p, _ := lookup(m, "primary"); p == true {
				primary = m
			}
		}
	}
	if primary == nil {
		return list
	}
	out := make([]any, len(list))
	for i, x := range list {
		if m, ok := x.(map[string]any); ok && !reflect.DeepEqual(m, primary) {
			if p, _ := lookup(m, "primary"); p == true {
				m = cloneMap(m)
				put(m, "primary", false)
				x = m
			}
		}
		out[i] = x
	}
	return out
}

// indexOf finds x in a multi-valued attribute's list: complex values with
// a "value" are the same when their values are; others when equal.
func indexOf(list []any, x any) int {
	xv, xHas := complexValue(x)
	for i, y := range list {
		if yv, yHas := complexValue(y); xHas && yHas {
			if xv == yv {
				return i
			}
			continue
		}
		if reflect.DeepEqual(x, y) {
			return i
		}
	}
	return -1
}

func complexValue(x any) (any, bool) {
	m, ok := x.(map[string]any)
	if !ok {
		return nil, false
	}
	v, ok := lookup(m, "value")
	if !ok || v == nil {
		return nil, false
	}
	switch v.(type) {
	case string, bool:
		return v, true
	}
	return nil, false
}

func putOrDelete(c map[string]any, name string, v any) {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			del(c, name)
			return
		}
	case map[string]any:
		if len(x) == 0 {
			del(c, name)
			return
		}
	}
	put(c, name, v)
}

// cloneMap copies a complex value (nil or not a map: an empty one).
func cloneMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	return out
}

// cloneList copies a multi-valued attribute's list and its complex values.
func cloneList(v any) []any {
	in := asList(v)
	out := make([]any, 0, len(in))
	for _, x := range in {
		if m, ok := x.(map[string]any); ok {
			x = cloneMap(m)
		}
		out = append(out, x)
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func invalidValue(detail string) scimerrors.ScimError {
	e := scimerrors.ScimErrorInvalidValue
	e.Detail = detail
	return e
}

func invalidPath(path string) scimerrors.ScimError {
	e := scimerrors.ScimErrorInvalidPath
	e.Detail = "PATCH path " + path + " names no attribute Roster can change"
	return e
}
