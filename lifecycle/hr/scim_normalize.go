package hr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/scim2/filter-parser/v2"
)

// This file is the thin layer between real SCIM clients and
// elimity-com/scim: it rewrites request bodies into the form the library
// accepts, so the library's parsing and type checks still apply. Each
// rewrite exists for a client that sends it:
//
//   - booleans as the strings "True"/"False" (Entra ID), on any boolean
//     attribute (active, emails[].primary), in resources and in PATCH
//     paths and values;
//   - the enterprise manager as a bare id string (Entra ID), in resources,
//     PATCH paths and path-less PATCH values: it becomes {"value": id};
//     an empty id or a null value removes the manager, and so does a
//     "remove" that names the manager in a value (Entra ID);
//   - PATCH "op" in any letter case ("Replace", "Add", "Remove");
//   - PATCH add/replace with a null value (a removal) and path-less values
//     holding null: they become remove operations;
//   - single-quoted literals in PATCH paths;
//   - extension attributes flattened to full-URN keys at the top of a
//     resource, extension containers with their URN in another case, and
//     OneLogin's legacy "urn:scim:schemas:core:2.0" and
//     "urn:scim:schemas:extension:enterprise:2.0" URNs;
//   - a resource without "schemas" (RFC 7643 requires it; nothing else
//     identifies a User or Group sent to /Users or /Groups).
//
// Malformed JSON (including trailing garbage, which the library would
// ignore) and PATCH operations whose "op" or "path" are not strings are
// rejected here with 400 invalidSyntax, a scalar where a multi-valued
// attribute belongs with 400 invalidValue. List filters are rewritten by
// normalizeFilter. A resource body that needs no rewrite reaches the
// library as it came.

const (
	legacyCoreSchema       = "urn:scim:schemas:core:2.0"
	legacyEnterpriseSchema = "urn:scim:schemas:extension:enterprise:2.0"
)

// decodeObject parses body as exactly one JSON object, keeping numbers.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

func invalidSyntax(detail string) *scimerrors.ScimError {
	e := scimerrors.ScimErrorInvalidSyntax
	e.Detail = detail
	return &e
}

// normalizeResource rewrites a User or Group sent with POST or PUT.
func (s *server) normalizeResource(body []byte, v *resSchema) ([]byte, *scimerrors.ScimError) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, invalidSyntax("the request body is not a JSON object: " + err.Error())
	}
	changed := s.ensureSchema(m, v.core.ID)
	for _, k := range sortedKeys(m) {
		if ext, ok := v.extension(k); ok && k != ext.ID {
			mergeInto(m, ext.ID, m[k]) // wrong case
			delete(m, k)
			changed = true
			continue
		}
		if strings.EqualFold(k, legacyEnterpriseSchema) && len(v.exts) > 0 {
			mergeInto(m, EnterpriseSchema, m[k])
			delete(m, k)
			changed = true
			continue
		}
		for _, ext := range v.exts {
			if len(k) > len(ext.ID)+1 && strings.EqualFold(k[:len(ext.ID)+1], ext.ID+":") {
				mergeInto(m, ext.ID, map[string]any{k[len(ext.ID)+1:]: m[k]})
				delete(m, k)
				changed = true
			}
		}
	}
	for k, x := range m {
		a, ok := attribute(&v.core, k)
		if !ok {
			continue
		}
		if a.MultiValued() {
			switch x.(type) {
			case nil, []any, map[string]any:
			default:
				e := invalidValue(a.Name() + " is multi-valued: want an array")
				return nil, &e
			}
		}
	}
	if s.fixBooleans(m) {
		changed = true
	}
	if ent, ok := m[EnterpriseSchema].(map[string]any); ok {
		for k, x := range ent {
			if !strings.EqualFold(k, "manager") {
				continue
			}
			switch y := managerValue(x); {
			case y == nil:
				delete(ent, k)
				changed = true
			case !isMap(x):
				ent[k] = y
				changed = true
			}
		}
	}
	if !changed {
		return body, nil // the library reads it as it came
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, invalidSyntax(err.Error())
	}
	return out, nil
}

func isMap(x any) bool {
	_, ok := x.(map[string]any)
	return ok
}

// ensureSchema adds the core schema URN to "schemas" when it is missing
// or the list has only a legacy core URN.
func (s *server) ensureSchema(m map[string]any, core string) bool {
	var key string
	for k := range m {
		if strings.EqualFold(k, "schemas") {
			key = k
		}
	}
	if key == "" {
		m["schemas"] = []any{core}
		return true
	}
	list, ok := m[key].([]any)
	if !ok {
		return false // the library rejects it
	}
	legacy := false
	for _, x := range list {
		if x == core {
			return false
		}
		if str, ok := x.(string); ok && (strings.EqualFold(str, legacyCoreSchema) || strings.EqualFold(str, core)) {
			legacy = true
		}
	}
	if legacy {
		m[key] = append(list, core)
	}
	return legacy
}

// mergeInto merges an extension's attributes into m[key].
func mergeInto(m map[string]any, key string, x any) {
	add, ok := x.(map[string]any)
	if !ok {
		if _, exists := m[key]; !exists {
			m[key] = x // let the library reject it
		}
		return
	}
	cur, _ := m[key].(map[string]any)
	if cur == nil {
		cur = map[string]any{}
		m[key] = cur
	}
	for k, v := range add {
		cur[k] = v
	}
}

// managerValue turns a manager sent as an id into {"value": id}; nil for
// no manager.
func managerValue(x any) any {
	switch v := x.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			return nil
		}
		return map[string]any{"value": v}
	case map[string]any:
		if id, ok := lookup(v, "value"); ok && (id == nil || id == "") {
			return nil
		}
	}
	return x
}

// fixBooleans turns "True"/"False" into booleans for every boolean
// attribute and sub-attribute in m, its extensions and multi-valued
// values.
func (s *server) fixBooleans(m map[string]any) (changed bool) {
	for k, x := range m {
		switch v := x.(type) {
		case string:
			if s.boolNames[strings.ToLower(k)] {
				if b, ok := asBool(v); ok {
					m[k] = b
					changed = true
				}
			}
		case map[string]any:
			changed = s.fixBooleans(v) || changed
		case []any:
			for _, el := range v {
				if em, ok := el.(map[string]any); ok {
					changed = s.fixBooleans(em) || changed
				}
			}
		}
	}
	return changed
}

// fixNested fixes the booleans inside a PATCH value: an object, or the
// objects of a list.
func (s *server) fixNested(v any) {
	switch x := v.(type) {
	case map[string]any:
		s.fixBooleans(x)
	case []any:
		for _, el := range x {
			if m, ok := el.(map[string]any); ok {
				s.fixBooleans(m)
			}
		}
	}
}

// normalizePatch rewrites a PATCH request body.
func (s *server) normalizePatch(body []byte, v *resSchema) ([]byte, *scimerrors.ScimError) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, invalidSyntax("the request body is not a JSON object: " + err.Error())
	}
	var opsKey string
	for k := range m {
		if strings.EqualFold(k, "Operations") {
			opsKey = k
		}
	}
	ops, ok := m[opsKey].([]any)
	if !ok {
		return body, nil // the library rejects it
	}
	out := make([]any, 0, len(ops))
	for _, x := range ops {
		op, ok := x.(map[string]any)
		if !ok {
			out = append(out, x)
			continue
		}
		more, serr := s.normalizeOp(op, v)
		if serr != nil {
			return nil, serr
		}
		out = append(out, more...)
	}
	delete(m, opsKey)
	m["Operations"] = out
	b, err := json.Marshal(m)
	if err != nil {
		return nil, invalidSyntax(err.Error())
	}
	return b, nil
}

// normalizeOp rewrites one PATCH operation; it may become several.
func (s *server) normalizeOp(in map[string]any, v *resSchema) ([]any, *scimerrors.ScimError) {
	op := map[string]any{}
	for k, x := range in {
		switch lk := strings.ToLower(k); lk {
		case "op", "path", "value":
			op[lk] = x
		default:
			op[k] = x
		}
	}
	name, ok := op["op"].(string)
	path, pathOK := op["path"].(string)
	if _, has := op["path"]; !ok || (has && !pathOK) {
		return nil, invalidSyntax(`a PATCH operation's "op" and "path" are strings`)
	}
	name = strings.ToLower(strings.TrimSpace(name))
	op["op"] = name
	path = strings.TrimSpace(path)
	if path == "" {
		delete(op, "path")
	} else {
		path = normalizeLiterals(path)
		op["path"] = path
	}
	value, hasValue := op["value"]
	if name == "remove" && hasValue && path != "" && s.mayRewrite(path) {
		// Entra ID sends the manager it removes as a value; a single-valued
		// attribute is removed whatever the value says.
		if p, err := filter.ParsePath([]byte(path)); err == nil && isManager(p.AttributePath) {
			delete(op, "value")
		}
	}
	if name != "add" && name != "replace" {
		return []any{op}, nil
	}
	if path != "" {
		if s.mayRewrite(path) { // parsing is costly: only when a rewrite may apply
			p, err := filter.ParsePath([]byte(path))
			if err != nil {
				return []any{op}, nil // the library reports the bad path
			}
			value = s.rewriteValue(p, value)
		}
		s.fixNested(value)
		if hasValue && value == nil {
			return []any{map[string]any{"op": "remove", "path": path}}, nil
		}
		if hasValue {
			op["value"] = value
		}
		return []any{op}, nil
	}
	vm, ok := value.(map[string]any)
	if !ok {
		return []any{op}, nil
	}
	var removes []any
	nv := map[string]any{}
	for _, k := range sortedKeys(vm) {
		x := vm[k]
		if ext, ok := v.extension(k); ok {
			inner, ok := x.(map[string]any)
			if !ok {
				nv[ext.ID] = x
				continue
			}
			ni := map[string]any{}
			for _, ik := range sortedKeys(inner) {
				y := inner[ik]
				if strings.EqualFold(ik, "manager") {
					y = managerValue(y)
				}
				if str, ok := y.(string); ok && s.boolNames[strings.ToLower(ik)] {
					if b, ok := asBool(str); ok {
						y = b
					}
				}
				if y == nil {
					removes = append(removes, map[string]any{"op": "remove", "path": ext.ID + ":" + ik})
					continue
				}
				ni[ik] = y
			}
			if len(ni) > 0 {
				nv[ext.ID] = ni
			}
			continue
		}
		if s.mayRewrite(k) {
			if p, err := filter.ParsePath([]byte(normalizeLiterals(k))); err == nil {
				x = s.rewriteValue(p, x)
			}
		}
		if x == nil {
			removes = append(removes, map[string]any{"op": "remove", "path": normalizeLiterals(k)})
			continue
		}
		nv[k] = x
	}
	s.fixBooleans(nv)
	if len(nv) == 0 && len(removes) > 0 {
		return removes, nil
	}
	op["value"] = nv
	return append([]any{op}, removes...), nil
}

// rewriteValue rewrites the value of an add or replace at path p: a
// manager id becomes {"value": id} (nil for none), "True"/"False" on a
// boolean become booleans.
func (s *server) rewriteValue(p filter.Path, x any) any {
	if isManager(p.AttributePath) && p.AttributePath.SubAttribute == nil && p.ValueExpression == nil {
		x = managerValue(x)
	}
	if str, ok := x.(string); ok && s.boolNames[strings.ToLower(lastName(p))] {
		if b, ok := asBool(str); ok {
			return b
		}
	}
	return x
}

// mayRewrite reports whether a PATCH path may name the manager or a
// boolean, the paths normalizeOp rewrites values for.
func (s *server) mayRewrite(path string) bool {
	lp := strings.ToLower(path)
	if strings.Contains(lp, "manager") {
		return true
	}
	for n := range s.boolNames {
		if strings.HasSuffix(lp, n) {
			return true
		}
	}
	return false
}

func isManager(p filter.AttributePath) bool {
	return strings.EqualFold(p.URI(), EnterpriseSchema) && strings.EqualFold(p.AttributeName, "manager")
}

// lastName is the name of the attribute a path ends at.
func lastName(p filter.Path) string {
	if p.SubAttribute != nil {
		return *p.SubAttribute
	}
	if p.AttributePath.SubAttribute != nil {
		return *p.AttributePath.SubAttribute
	}
	return p.AttributePath.AttributeName
}
