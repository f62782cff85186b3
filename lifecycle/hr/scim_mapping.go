package hr

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

	"github.com/rosterhq/roster/lifecycle"
)

// Mapping says which SCIM attribute feeds which worker attribute: worker
// attribute name -> SCIM attribute path. HR systems differ, so it is
// configurable (roster.yaml); DefaultMapping is what most need.
//
// Worker attributes: userName, email, givenName, familyName, displayName,
// employeeNumber, workerType, title, department, division, organization,
// team, costCenter, location, manager, startDate, endDate, active, and
// custom:<name> for HRRecord.Custom[<name>]. The worker id is the SCIM id
// and externalId is always the SCIM externalId; neither is mappable.
//
// SCIM paths may name
//   - a simple attribute of the core User schema: "title", "userName",
//     "active" (the only boolean; it can only feed active);
//   - a sub-attribute of a complex one: "name.givenName";
//   - one value of a multi-valued attribute, chosen by equality on its
//     sub-attributes: `emails[type eq "work"].value`,
//     `addresses[type eq "work"].locality`;
//   - an attribute of the enterprise extension with its URN:
//     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
//     "…:User:manager" is the manager's id (manager.value);
//   - any attribute of the Roster extension
//     ("urn:ietf:params:scim:schemas:extension:roster:2.0:User:badgeColor"):
//     attributes that are not among its fixed ones are added to the served
//     schema, so custom:<name> attributes can travel there.
//
// Worker attributes left out of a mapping are never changed by SCIM. Two
// worker attributes may not share a SCIM path.
type Mapping map[string]string

// DefaultMapping is the mapping used when none is configured.
func DefaultMapping() Mapping {
	e := EnterpriseSchema + ":"
	r := RosterSchema + ":"
	return Mapping{
		"userName":              "userName",
		"email":                 `emails[type eq "work"].value`,
		"givenName":             "name.givenName",
		"familyName":            "name.familyName",
		"displayName":           "displayName",
		"title":                 "title",
		"active":                "active",
		"employeeNumber":        e + "employeeNumber",
		"costCenter":            e + "costCenter",
		"organization":          e + "organization",
		"division":              e + "division",
		"department":            e + "department",
		"manager":               e + "manager",
		"workerType":            r + "workerType",
		"location":              r + "location",
		"team":                  r + "team",
		"startDate":             r + "startDate",
		"endDate":               r + "endDate",
		"custom:githubUsername": r + "githubUsername",
	}
}

// workerStringAttrs are the worker attributes that hold a string.
var workerStringAttrs = []string{"userName", "email", "givenName", "familyName", "displayName", "employeeNumber",
	"workerType", "title", "department", "division", "organization", "team", "costCenter", "location", "manager",
	"startDate", "endDate"}

const customPrefix = "custom:"

// Validate reports every problem of the mapping (joined): an unknown
// worker attribute, a path that does not parse or names no supported
// attribute, a boolean/string mismatch, a path used twice.
func (m Mapping) Validate() error {
	_, err := m.compile()
	return err
}

// mappedField is one compiled mapping entry.
type mappedField struct {
	worker string // worker attribute name ("custom:x" for custom)
	path   *attrRef
}

// compiledMapping is a validated Mapping with its schemas.
type compiledMapping struct {
	fields  []mappedField // sorted by worker attribute
	schemas *schemas
	view    *resSchema
	// userNamePath is true when userName feeds from the SCIM userName,
	// so a userName filter can use the store's index.
	userNamePath bool
}

var attrNameRE = regexp.MustCompile(`^[A-Za-z][\w$-]*$`)

func (m Mapping) compile() (*compiledMapping, error) {
	var errs []error
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	known := map[string]bool{"active": true}
	for _, a := range workerStringAttrs {
		known[a] = true
	}
	type parsed struct {
		worker string
		raw    string
		path   filter.Path
	}
	var ps []parsed
	var extra []string
	for _, w := range names {
		raw := strings.TrimSpace(m[w])
		switch {
		case w == "id":
			errs = append(errs, errors.New("mapping: id is not mappable (the worker id is the SCIM id)"))
			continue
		case strings.HasPrefix(w, customPrefix):
			if n := w[len(customPrefix):]; strings.TrimSpace(n) == "" || n != strings.TrimSpace(n) {
				errs = append(errs, fmt.Errorf("mapping: %q: want custom:<name>", w))
				continue
			}
		case !known[w]:
			errs = append(errs, fmt.Errorf("mapping: unknown worker attribute %q (known: %s, active, custom:<name>)", w, strings.Join(workerStringAttrs, ", ")))
			continue
		}
		p, err := filter.ParsePath([]byte(normalizeLiterals(raw)))
		if err != nil {
			errs = append(errs, fmt.Errorf("mapping: %s: SCIM path %q does not parse", w, raw))
			continue
		}
		if strings.EqualFold(p.AttributePath.URI(), RosterSchema) {
			if !attrNameRE.MatchString(p.AttributePath.AttributeName) || p.AttributePath.SubAttribute != nil ||
				p.ValueExpression != nil || p.SubAttribute != nil {
				errs = append(errs, fmt.Errorf("mapping: %s: %q: Roster extension attributes are simple strings (URN:name)", w, raw))
				continue
			}
			extra = append(extra, p.AttributePath.AttributeName)
		}
		ps = append(ps, parsed{worker: w, raw: raw, path: p})
	}
	if _, ok := m["userName"]; !ok {
		errs = append(errs, errors.New("mapping: userName must be mapped (SCIM requires it)"))
	}
	sch := newSchemas(extra)
	cm := &compiledMapping{schemas: sch, view: sch.userView()}
	seen := map[string]string{}
	for _, p := range ps {
		ref, err := resolveMapped(cm.view, p.path, p.raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("mapping: %s: %w", p.worker, err))
			continue
		}
		if (p.worker == "active") != ref.boolean {
			if ref.boolean {
				errs = append(errs, fmt.Errorf("mapping: %s: %q is a boolean; only active can take it", p.worker, p.raw))
			} else {
				errs = append(errs, fmt.Errorf("mapping: active: %q is not a boolean attribute", p.raw))
			}
			continue
		}
		if other, dup := seen[ref.key()]; dup {
			errs = append(errs, fmt.Errorf("mapping: %s and %s both map to %q", other, p.worker, p.raw))
			continue
		}
		seen[ref.key()] = p.worker
		cm.fields = append(cm.fields, mappedField{worker: p.worker, path: ref})
		if p.worker == "userName" && ref.uri == "" && ref.attr == "userName" && ref.sub == "" && !ref.multi {
			cm.userNamePath = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cm, nil
}

// attrRef is a resolved mapping path.
type attrRef struct {
	raw     string
	uri     string // container key: "" for the top level, else an extension URN
	attr    string // canonical attribute name
	sub     string // canonical sub-attribute, "" for none
	multi   bool   // attr is multi-valued; sel picks the value
	sel     []eqTerm
	primary bool // attr's values have a "primary" sub-attribute
	boolean bool
}

// eqTerm is one "sub eq literal" of a value selection.
type eqTerm struct {
	name  string // canonical sub-attribute name
	value any    // string or bool
}

func (r *attrRef) key() string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.uri) + "|" + strings.ToLower(r.attr) + "|" + strings.ToLower(r.sub))
	for _, t := range r.sel {
		fmt.Fprintf(&b, "|%s=%v", strings.ToLower(t.name), t.value)
	}
	return b.String()
}

// resolveMapped checks a parsed mapping path against the User schemas.
func resolveMapped(v *resSchema, p filter.Path, raw string) (*attrRef, error) {
	sc, key, ok := v.container(p.AttributePath.URI())
	if !ok {
		return nil, fmt.Errorf("%q: unknown schema %s", raw, p.AttributePath.URI())
	}
	a, ok := attribute(sc, p.AttributePath.AttributeName)
	if !ok {
		return nil, fmt.Errorf("%q: %s has no attribute %s", raw, sc.ID, p.AttributePath.AttributeName)
	}
	if strings.EqualFold(a.Name(), "externalId") {
		return nil, fmt.Errorf("%q: externalId is not mappable (it is always the worker's externalId)", raw)
	}
	if a.Mutability() == "readOnly" {
		return nil, fmt.Errorf("%q: %s is read-only", raw, a.Name())
	}
	ref := &attrRef{raw: raw, uri: key, attr: a.Name()}
	target := a
	subName := p.AttributePath.SubAttributeName()
	switch {
	case a.MultiValued():
		if a.AttributeType() != "complex" || p.ValueExpression == nil || p.SubAttribute == nil || subName != "" {
			return nil, fmt.Errorf("%q: %s is multi-valued: name one value as %s[type eq \"work\"].value", raw, a.Name(), a.Name())
		}
		sel, ok := eqTerms(p.ValueExpression, a)
		if !ok {
			return nil, fmt.Errorf("%q: the value selection must be sub-attribute eq literal, joined by and", raw)
		}
		ref.multi, ref.sel, subName = true, sel, *p.SubAttribute
		_, ref.primary = subAttribute(a, "primary")
	case p.ValueExpression != nil || p.SubAttribute != nil:
		return nil, fmt.Errorf("%q: %s is not multi-valued", raw, a.Name())
	case a.AttributeType() == "complex" && subName == "":
		if key != EnterpriseSchema || a.Name() != "manager" {
			return nil, fmt.Errorf("%q: %s is complex: name a sub-attribute (%s.<sub>)", raw, a.Name(), a.Name())
		}
		subName = "value" // the manager is its id
	}
	if subName != "" {
		sa, ok := subAttribute(a, subName)
		if !ok {
			return nil, fmt.Errorf("%q: %s has no sub-attribute %s", raw, a.Name(), subName)
		}
		if sa.Mutability() == "readOnly" {
			return nil, fmt.Errorf("%q: %s.%s is read-only", raw, a.Name(), sa.Name())
		}
		ref.sub, target = sa.Name(), sa
	}
	switch target.AttributeType() {
	case "string", "reference":
	case "boolean":
		ref.boolean = true
	default:
		return nil, fmt.Errorf("%q: %s attributes are not supported", raw, target.AttributeType())
	}
	return ref, nil
}

// eqTerms turns `a eq "x" and b eq true` on the sub-attributes of attr
// into terms; ok is false for any other expression.
func eqTerms(e filter.Expression, attr schema.CoreAttribute) ([]eqTerm, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ || e.AttributePath.URIPrefix != nil || e.AttributePath.SubAttribute != nil {
			return nil, false
		}
		sa, ok := subAttribute(attr, e.AttributePath.AttributeName)
		if !ok {
			return nil, false
		}
		switch v := e.CompareValue.(type) {
		case string:
			return []eqTerm{{name: sa.Name(), value: unescapeLiteral(v)}}, true
		case bool:
			return []eqTerm{{name: sa.Name(), value: v}}, true
		}
		return nil, false
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return nil, false
		}
		l, ok := eqTerms(e.Left, attr)
		if !ok {
			return nil, false
		}
		r, ok := eqTerms(e.Right, attr)
		if !ok {
			return nil, false
		}
		return append(l, r...), true
	}
	return nil, false
}

// get reads the mapped value from a SCIM resource. present is false
// when the attribute is absent.
func (r *attrRef) get(doc map[string]any) (v any, present bool) {
	c := doc
	if r.uri != "" {
		c, _ = lookupMap(doc, r.uri)
		if c == nil {
			return nil, false
		}
	}
	val, ok := lookup(c, r.attr)
	if !ok {
		return nil, false
	}
	if r.multi {
		el := r.pick(asList(val))
		if el == nil {
			return nil, false
		}
		return lookup(el, r.sub)
	}
	if r.sub != "" {
		m, ok := val.(map[string]any)
		if !ok {
			return val, true // wrong shape: the caller reports the type
		}
		return lookup(m, r.sub)
	}
	return val, true
}

// pick chooses the element of a multi-valued attribute the selection
// names, the primary one when several match. When none matches and the selection is on "type" only, an
// untyped element stands in (the primary one, else the first): clients
// such as OneLogin may send e-mails without a type. Elements written by
// Roster always carry the type, so this never shadows one of them.
func (r *attrRef) pick(list []any) map[string]any {
	var match map[string]any
	for _, x := range list {
		if el, ok := x.(map[string]any); ok && r.selects(el) {
			if p, _ := lookup(el, "primary"); p == true {
				return el
			}
			if match == nil {
				match = el
			}
		}
	}
	if match != nil {
		return match
	}
	if len(r.sel) != 1 || !strings.EqualFold(r.sel[0].name, "type") {
		return nil
	}
	var first map[string]any
	for _, x := range list {
		el, ok := x.(map[string]any)
		if !ok {
			continue
		}
		if t, ok := lookup(el, "type"); ok && t != nil && t != "" {
			continue
		}
		if p, _ := lookup(el, "primary"); p == true {
			return el
		}
		if first == nil {
			first = el
		}
	}
	return first
}

func (r *attrRef) selects(el map[string]any) bool {
	for _, t := range r.sel {
		v, _ := lookup(el, t.name)
		switch tv := t.value.(type) {
		case string:
			s, ok := v.(string)
			if !ok || !strings.EqualFold(s, tv) {
				return false
			}
		case bool:
			if v != tv {
				return false
			}
		}
	}
	return true
}

// set writes a mapped value into a SCIM resource being built.
func (r *attrRef) set(doc map[string]any, v any) {
	c := doc
	if r.uri != "" {
		c, _ = lookupMap(doc, r.uri)
		if c == nil {
			c = map[string]any{}
			doc[r.uri] = c
		}
	}
	switch {
	case r.multi:
		list := asList(c[r.attr])
		var el map[string]any
		for _, x := range list {
			if m, ok := x.(map[string]any); ok && r.selects(m) {
				el = m
				break
			}
		}
		if el == nil {
			el = map[string]any{}
			for _, t := range r.sel {
				el[t.name] = t.value
			}
			if len(list) == 0 && r.primary {
				el["primary"] = true
			}
			list = append(list, el)
			c[r.attr] = list
		}
		el[r.sub] = v
	case r.sub != "":
		m, _ := c[r.attr].(map[string]any)
		if m == nil {
			m = map[string]any{}
			c[r.attr] = m
		}
		m[r.sub] = v
	default:
		c[r.attr] = v
	}
}

// toDoc renders an HR record as a SCIM User resource (without id, meta
// and schemas, which the library adds).
func (c *compiledMapping) toDoc(r *lifecycle.HRRecord) map[string]any {
	doc := map[string]any{}
	for _, f := range c.fields {
		if f.worker == "active" {
			f.path.set(doc, r.Active)
			continue
		}
		if v := workerValue(r, f.worker); v != "" {
			f.path.set(doc, v)
		}
	}
	if r.ExternalID != "" {
		doc["externalId"] = r.ExternalID
	}
	return doc
}

// fieldError is a mapped attribute with a value Roster cannot take.
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

// toRecord reads a SCIM User resource into an HR record. base supplies
// what SCIM does not carry: the id, the HR groups, attributes the mapping
// leaves out, and active when the resource has none. Strings are
// trimmed, workerType is lower-cased, dates are checked. externalId is
// the resource's.
func (c *compiledMapping) toRecord(doc map[string]any, base *lifecycle.HRRecord) (lifecycle.HRRecord, error) {
	rec := *base
	rec.Custom = maps.Clone(base.Custom)
	for _, f := range c.fields {
		v, present := f.path.get(doc)
		if f.worker == "active" {
			if !present || v == nil {
				continue
			}
			b, ok := asBool(v)
			if !ok {
				return rec, &fieldError{f.path.raw, "want a boolean"}
			}
			rec.Active = b
			continue
		}
		var s string
		switch x := v.(type) {
		case nil:
		case string:
			s = strings.TrimSpace(x)
		default:
			return rec, &fieldError{f.path.raw, "want a string"}
		}
		switch f.worker {
		case "startDate", "endDate":
			d, err := parseHRDate(s)
			if err != nil {
				return rec, &fieldError{f.path.raw, err.Error()}
			}
			s = string(d)
		case "workerType":
			s = strings.ToLower(s)
		}
		setWorkerValue(&rec, f.worker, s)
	}
	if len(rec.Custom) == 0 {
		rec.Custom = nil
	}
	rec.ExternalID = ""
	if v, ok := lookup(doc, "externalId"); ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return rec, &fieldError{"externalId", "want a string"}
		}
		rec.ExternalID = strings.TrimSpace(s)
	}
	if rec.UserName == "" {
		return rec, &fieldError{"userName", "is required"}
	}
	return rec, nil
}

// parseHRDate accepts YYYY-MM-DD, or an RFC 3339 dateTime whose date
// (as written, in its own offset) is used.
func parseHRDate(s string) (lifecycle.Date, error) {
	if len(s) > len(time.DateOnly) {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return "", fmt.Errorf("date %q: want YYYY-MM-DD", s)
		}
		s = t.Format(time.DateOnly)
	}
	return lifecycle.ParseDate(s)
}

func workerValue(r *lifecycle.HRRecord, name string) string {
	if n, ok := strings.CutPrefix(name, customPrefix); ok {
		return r.Custom[n]
	}
	if p := workerField(r, name); p != nil {
		return *p
	}
	switch name {
	case "startDate":
		return string(r.StartDate)
	case "endDate":
		return string(r.EndDate)
	}
	return ""
}

func setWorkerValue(r *lifecycle.HRRecord, name, v string) {
	if n, ok := strings.CutPrefix(name, customPrefix); ok {
		if v == "" {
			delete(r.Custom, n)
			return
		}
		if r.Custom == nil {
			r.Custom = map[string]string{}
		}
		r.Custom[n] = v
		return
	}
	if p := workerField(r, name); p != nil {
		*p = v
		return
	}
	switch name {
	case "startDate":
		r.StartDate = lifecycle.Date(v)
	case "endDate":
		r.EndDate = lifecycle.Date(v)
	}
}

// workerField points at the string field of r named name (nil for dates,
// active and custom attributes).
func workerField(r *lifecycle.HRRecord, name string) *string {
	switch name {
	case "userName":
		return &r.UserName
	case "email":
		return &r.Email
	case "givenName":
		return &r.GivenName
	case "familyName":
		return &r.FamilyName
	case "displayName":
		return &r.DisplayName
	case "employeeNumber":
		return &r.EmployeeNumber
	case "workerType":
		return &r.WorkerType
	case "title":
		return &r.Title
	case "department":
		return &r.Department
	case "division":
		return &r.Division
	case "organization":
		return &r.Organization
	case "team":
		return &r.Team
	case "costCenter":
		return &r.CostCenter
	case "location":
		return &r.Location
	case "manager":
		return &r.Manager
	}
	return nil
}

// lookup finds a key of m case-insensitively (SCIM attribute names are
// case-insensitive), preferring an exact match.
func lookup(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func lookupMap(m map[string]any, name string) (map[string]any, bool) {
	v, ok := lookup(m, name)
	if !ok {
		return nil, false
	}
	mm, ok := v.(map[string]any)
	return mm, ok
}

// put sets m[name] = v, removing keys that differ from name only in case.
func put(m map[string]any, name string, v any) {
	for k := range m {
		if k != name && strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
	m[name] = v
}

// del removes name from m, whatever its case.
func del(m map[string]any, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

// asList returns a multi-valued attribute's values; a lone value (a
// client that sent an object instead of an array) is a list of one.
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

func asBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}
