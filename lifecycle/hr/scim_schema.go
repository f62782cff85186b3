package hr

import (
	"strings"

	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Schema URNs the SCIM service provider serves.
const (
	UserSchema       = schema.UserSchema  // urn:ietf:params:scim:schemas:core:2.0:User
	GroupSchema      = schema.GroupSchema // urn:ietf:params:scim:schemas:core:2.0:Group
	EnterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// RosterSchema is Roster's own User extension: what HR needs and
	// SCIM lacks (start and end dates, worker type, location, team,
	// GitHub username, and every custom attribute a Mapping sends to it).
	RosterSchema = "urn:ietf:params:scim:schemas:extension:roster:2.0:User"

	patchOpSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	errorSchema   = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// rosterAttributes are the attributes the Roster extension always has,
// with their descriptions.
var rosterAttributes = []struct{ name, desc string }{
	{"startDate", "First working day, YYYY-MM-DD in the company timezone (a dateTime is accepted; its date is used)."},
	{"endDate", "Last working day (contract end), YYYY-MM-DD; the worker leaves after it."},
	{"workerType", "employee, contractor, vendor or intern (case-insensitive)."},
	{"location", "Office or work location."},
	{"team", "Team or squad, as policies use it (e.g. team/${worker.team})."},
	{"githubUsername", "GitHub login of the worker."},
}

// schemas are the SCIM schemas of one service provider: the core User
// schema with its two extensions, and the core Group schema.
type schemas struct {
	user       schema.Schema
	enterprise schema.Schema
	roster     schema.Schema
	group      schema.Schema
}

// newSchemas builds the schemas; extra are attribute names the mapping
// sends to the Roster extension beyond rosterAttributes (already checked
// to be valid attribute names).
func newSchemas(extra []string) *schemas {
	var attrs []schema.CoreAttribute
	seen := map[string]bool{}
	add := func(name, desc string) {
		if seen[strings.ToLower(name)] {
			return
		}
		seen[strings.ToLower(name)] = true
		attrs = append(attrs, schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
			Name: name, Description: optional.NewString(desc),
		})))
	}
	for _, a := range rosterAttributes {
		add(a.name, a.desc)
	}
	for _, n := range extra {
		add(n, "Custom HR attribute "+n+" (worker.custom."+n+" in policies).")
	}
	return &schemas{
		user:       schema.CoreUserSchema(),
		enterprise: schema.ExtensionEnterpriseUser(),
		roster: schema.Schema{
			ID:          RosterSchema,
			Name:        optional.NewString("Roster User"),
			Description: optional.NewString("HR attributes Roster's policies use that SCIM's core and enterprise schemas lack."),
			Attributes:  attrs,
		},
		group: schema.CoreGroupSchema(),
	}
}

// resSchema is one resource type's view: its core schema and extensions.
type resSchema struct {
	core schema.Schema
	exts []schema.Schema
}

func (s *schemas) userView() *resSchema {
	return &resSchema{core: s.user, exts: []schema.Schema{s.enterprise, s.roster}}
}

func (s *schemas) groupView() *resSchema { return &resSchema{core: s.group} }

// container returns the schema that owns attributes with the given URI
// prefix ("" or the core URN: the core schema) and the key of its
// container in a resource ("" for the top level). ok is false for an
// unknown URI.
func (v *resSchema) container(uri string) (s *schema.Schema, key string, ok bool) {
	if uri == "" || strings.EqualFold(uri, v.core.ID) {
		return &v.core, "", true
	}
	for i := range v.exts {
		if strings.EqualFold(uri, v.exts[i].ID) {
			return &v.exts[i], v.exts[i].ID, true
		}
	}
	return nil, "", false
}

// extension returns the extension whose URN is key (case-insensitive).
func (v *resSchema) extension(key string) (*schema.Schema, bool) {
	for i := range v.exts {
		if strings.EqualFold(key, v.exts[i].ID) {
			return &v.exts[i], true
		}
	}
	return nil, false
}

// attribute finds a top-level attribute of s by name (case-insensitive).
// The common attribute externalId is an attribute of every core schema.
func attribute(s *schema.Schema, name string) (schema.CoreAttribute, bool) {
	if a, ok := s.Attributes.ContainsAttribute(name); ok {
		return a, true
	}
	if strings.EqualFold(name, "externalId") && (s.ID == UserSchema || s.ID == GroupSchema) {
		return externalIDAttribute, true
	}
	return schema.CoreAttribute{}, false
}

var externalIDAttribute = schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
	CaseExact: true, Name: "externalId",
}))

// subAttribute finds a sub-attribute of a by name (case-insensitive).
func subAttribute(a schema.CoreAttribute, name string) (schema.CoreAttribute, bool) {
	if !a.HasSubAttributes() {
		return schema.CoreAttribute{}, false
	}
	return a.SubAttributes().ContainsAttribute(name)
}

// booleanNames are the (lower-cased) names of the boolean attributes and
// sub-attributes of the User and Group schemas: the values clients may
// send as the strings "True" and "False".
func (s *schemas) booleanNames() map[string]bool {
	out := map[string]bool{}
	for _, sc := range []schema.Schema{s.user, s.enterprise, s.roster, s.group} {
		for _, a := range sc.Attributes {
			if a.AttributeType() == "boolean" {
				out[strings.ToLower(a.Name())] = true
			}
			for _, sub := range a.SubAttributes() {
				if sub.AttributeType() == "boolean" {
					out[strings.ToLower(sub.Name())] = true
				}
			}
		}
	}
	return out
}
