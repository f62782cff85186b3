package hr

import (
	"net/http"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// TestPatchForms: the PATCH forms clients send, each on the same user,
// and the HR record they leave.
func TestPatchForms(t *testing.T) {
	start := lifecycle.HRRecord{UserName: "u@x", Email: "u@x", GivenName: "Ann", FamilyName: "Lee", Title: "Engineer",
		Department: "Engineering", DisplayName: "Ann Lee", Manager: "w-boss", Active: true}
	tests := []struct {
		name string
		ops  string
		want func(r *lifecycle.HRRecord)
	}{
		{"replace, any case", `{"op":"REPLACE","path":"title","value":"Lead"}`, func(r *lifecycle.HRRecord) { r.Title = "Lead" }},
		{"add on a set attribute replaces", `{"op":"Add","path":"title","value":"Lead"}`, func(r *lifecycle.HRRecord) { r.Title = "Lead" }},
		{"attribute names in any case", `{"op":"replace","path":"TITLE","value":"Lead"}`, func(r *lifecycle.HRRecord) { r.Title = "Lead" }},
		{"remove", `{"op":"remove","path":"title"}`, func(r *lifecycle.HRRecord) { r.Title = "" }},
		{"replace with null removes", `{"op":"replace","path":"displayName","value":null}`, func(r *lifecycle.HRRecord) { r.DisplayName = "" }},
		{"path-less null removes", `{"op":"replace","value":{"title":null,"displayName":"A"}}`, func(r *lifecycle.HRRecord) { r.Title, r.DisplayName = "", "A" }},
		{"active as a lower-case string", `{"op":"replace","path":"active","value":"false"}`, func(r *lifecycle.HRRecord) { r.Active = false }},
		{"path-less active", `{"op":"replace","value":{"active":"False"}}`, func(r *lifecycle.HRRecord) { r.Active = false }},
		{"manager {value}", `{"op":"replace","path":"` + EnterpriseSchema + `:manager","value":{"value":"w-new"}}`, func(r *lifecycle.HRRecord) { r.Manager = "w-new" }},
		{"manager.value", `{"op":"replace","path":"` + EnterpriseSchema + `:manager.value","value":"w-new"}`, func(r *lifecycle.HRRecord) { r.Manager = "w-new" }},
		{"manager removed with a value (Entra)", `{"op":"Remove","path":"` + EnterpriseSchema + `:manager","value":[{"value":"w-boss"}]}`, func(r *lifecycle.HRRecord) { r.Manager = "" }},
		{"manager emptied", `{"op":"replace","path":"` + EnterpriseSchema + `:manager","value":""}`, func(r *lifecycle.HRRecord) { r.Manager = "" }},
		{"manager emptied as {value:\"\"}", `{"op":"replace","path":"` + EnterpriseSchema + `:manager","value":{"value":""}}`, func(r *lifecycle.HRRecord) { r.Manager = "" }},
		{"extension container", `{"op":"add","value":{"` + EnterpriseSchema + `":{"department":"Sales","manager":"w-new"}}}`, func(r *lifecycle.HRRecord) { r.Department, r.Manager = "Sales", "w-new" }},
		{"extension container, null", `{"op":"replace","value":{"` + EnterpriseSchema + `":{"department":null}}}`, func(r *lifecycle.HRRecord) { r.Department = "" }},
		{"complex value merges", `{"op":"replace","path":"name","value":{"givenName":"Anna"}}`, func(r *lifecycle.HRRecord) { r.GivenName = "Anna" }},
		{"path-less complex value merges", `{"op":"add","value":{"name":{"familyName":"Li"}}}`, func(r *lifecycle.HRRecord) { r.FamilyName = "Li" }},
		{"value path, whole value", `{"op":"replace","path":"emails[type eq \"work\"]","value":{"value":"n@x"}}`, func(r *lifecycle.HRRecord) { r.Email = "n@x" }},
		{"value path removed", `{"op":"remove","path":"emails[type eq \"work\"]"}`, func(r *lifecycle.HRRecord) { r.Email = "" }},
		{"value path sub removed", `{"op":"remove","path":"emails[type eq \"work\"].value"}`, func(r *lifecycle.HRRecord) { r.Email = "" }},
		{"value path, single quotes", `{"op":"replace","path":"emails[type eq 'work'].value","value":"q@x"}`, func(r *lifecycle.HRRecord) { r.Email = "q@x" }},
		{"a new primary work e-mail", `{"op":"add","path":"emails","value":[{"type":"work","value":"p@x","primary":"True"}]}`, func(r *lifecycle.HRRecord) { r.Email = "p@x" }},
		{"e-mails replaced", `{"op":"replace","path":"emails","value":[{"type":"home","value":"h@x"}]}`, func(r *lifecycle.HRRecord) { r.Email = "" }},
		{"Roster extension, dateTime", `{"op":"add","path":"` + RosterSchema + `:endDate","value":"2026-12-31T00:00:00Z"}`, func(r *lifecycle.HRRecord) { r.EndDate = "2026-12-31" }},
		{"Roster extension, custom", `{"op":"add","path":"` + RosterSchema + `:githubUsername","value":"ann"}`, func(r *lifecycle.HRRecord) { r.Custom = map[string]string{"githubUsername": "ann"} }},
		{"core URN prefix", `{"op":"replace","path":"` + UserSchema + `:title","value":"Lead"}`, func(r *lifecycle.HRRecord) { r.Title = "Lead" }},
		{"unmapped attribute is accepted and ignored", `{"op":"add","path":"nickName","value":"A"}`, func(r *lifecycle.HRRecord) {}},
		{"several operations in order", `{"op":"replace","path":"title","value":"A"},{"op":"replace","path":"title","value":"B"}`, func(r *lifecycle.HRRecord) { r.Title = "B" }},
		{"externalId", `{"op":"add","path":"externalId","value":"e-9"}`, func(r *lifecycle.HRRecord) { r.ExternalID = "e-9" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeStore()
			rec := start
			rec.ID = "w-0001"
			if _, _, err := store.UpsertHR(t.Context(), "seed", rec); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, store)
			h.do("PATCH", "/Users/w-0001", patchBody(tt.ops)).must(t, http.StatusOK)
			want := rec
			tt.want(&want)
			assertRecord(t, h.worker("w-0001").HR, want)
		})
	}
}

// The Okta and Entra group member forms, on a group of three.
func TestGroupPatchForms(t *testing.T) {
	tests := []struct {
		name string
		ops  string
		want []string
	}{
		{"Entra remove with a value array", `{"op":"Remove","path":"members","value":[{"value":"w-2"}]}`, []string{"w-1", "w-3"}},
		{"remove by value path", `{"op":"remove","path":"members[value eq \"w-3\"]"}`, []string{"w-1", "w-2"}},
		{"remove all", `{"op":"remove","path":"members"}`, nil},
		{"add existing and new", `{"op":"add","path":"members","value":[{"value":"w-1"},{"value":"w-4"}]}`, []string{"w-1", "w-2", "w-3", "w-4"}},
		{"add one as an object", `{"op":"add","path":"members","value":{"value":"w-4"}}`, []string{"w-1", "w-2", "w-3", "w-4"}},
		{"replace", `{"op":"replace","path":"members","value":[{"value":"w-4"}]}`, []string{"w-4"}},
		{"path-less replace", `{"op":"replace","value":{"members":[{"value":"w-2"}]}}`, []string{"w-2"}},
		{"remove an absent member", `{"op":"remove","path":"members","value":[{"value":"w-4"}]}`, []string{"w-1", "w-2", "w-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeStore()
			for _, id := range []string{"w-1", "w-2", "w-3", "w-4"} {
				if _, _, err := store.UpsertHR(t.Context(), "seed", lifecycle.HRRecord{ID: connectors.WorkerID(id), UserName: id, Active: true}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := store.UpsertGroup(t.Context(), "seed", lifecycle.HRGroup{ID: "g-1", DisplayName: "G", Members: []connectors.WorkerID{"w-1", "w-2", "w-3"}}); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, store)
			h.do("PATCH", "/Groups/g-1", patchBody(tt.ops)).must(t, http.StatusOK)
			assertMembers(t, h, "g-1", tt.want...)
		})
	}
}
