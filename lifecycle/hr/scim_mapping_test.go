package hr

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterhq/roster/lifecycle"
)

func TestMappingValidate(t *testing.T) {
	with := func(k, v string) Mapping {
		m := DefaultMapping()
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		m       Mapping
		wantErr string // "" = valid
	}{
		{"default", DefaultMapping(), ""},
		{"location from the work address", with("location", `addresses[type eq "work"].locality`), ""},
		{"email from the primary e-mail", with("email", `emails[primary eq true].value`), ""},
		{"custom to a new Roster attribute", with("custom:badge", RosterSchema+":badgeColor"), ""},
		{"custom to a core attribute", with("custom:nick", "nickName"), ""},
		{"manager.value", with("manager", EnterpriseSchema+":manager.value"), ""},
		{"single quotes", with("email", `emails[type eq 'work'].value`), ""},
		{"without title", with("title", ""), ""},
		{"unknown worker attribute", with("shoeSize", "title"), `unknown worker attribute "shoeSize"`},
		{"id", with("id", "userName"), "id is not mappable"},
		{"custom without name", with("custom:", "nickName"), "custom:<name>"},
		{"no userName", with("userName", ""), "userName must be mapped"},
		{"does not parse", with("title", "title[["), "does not parse"},
		{"unknown attribute", with("title", "jobTitle"), "has no attribute jobTitle"},
		{"unknown schema", with("title", "urn:example:2.0:User:title"), "unknown schema"},
		{"multi-valued without selection", with("email", "emails"), "multi-valued"},
		{"selection with or", with("email", `emails[type eq "work" or type eq "home"].value`), "eq literal"},
		{"complex without sub", with("givenName", "name"), "is complex"},
		{"unknown sub", with("givenName", "name.first"), "no sub-attribute first"},
		{"read-only", with("custom:g", "groups[type eq \"x\"].value"), "read-only"},
		{"externalId", with("custom:ext", "externalId"), "externalId is not mappable"},
		{"boolean into a string", with("title", "active"), "only active can take it"},
		{"active from a string", with("active", "title"), "not a boolean"},
		{"twice", with("displayName", "title"), "both map to"},
		{"Roster attribute with a sub", with("team", RosterSchema+":team.name"), "simple strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate: no error, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestMappingRoundTrip(t *testing.T) {
	m := DefaultMapping()
	m["location"] = `addresses[type eq "work"].locality`
	m["custom:badge"] = RosterSchema + ":badgeColor"
	m["custom:personalEmail"] = `emails[type eq "home"].value`
	cm, err := m.compile()
	if err != nil {
		t.Fatal(err)
	}
	recs := []lifecycle.HRRecord{
		{ID: "w-1", UserName: "a", Active: true},
		{ID: "w-2", UserName: "b", Email: "b@x", GivenName: "B", FamilyName: "Bee", DisplayName: "B Bee", EmployeeNumber: "7",
			WorkerType: "contractor", Title: "T", Department: "D", Division: "V", Organization: "O", Team: "t", CostCenter: "C",
			Location: "Berlin", Manager: "w-1", StartDate: "2026-01-01", EndDate: "2026-12-31", ExternalID: "x-2",
			Custom: map[string]string{"githubUsername": "bee", "badge": "red", "personalEmail": "b@home", "unmapped": "kept"}},
		{ID: "w-3", UserName: "c", Custom: map[string]string{"personalEmail": "c@home"}}, // no work e-mail
	}
	for _, r := range recs {
		doc := cm.toDoc(&r)
		got, err := cm.toRecord(doc, &lifecycle.HRRecord{ID: r.ID, Active: !r.Active, Custom: map[string]string{"unmapped": r.Custom["unmapped"]}})
		if err != nil {
			t.Fatalf("%s: toRecord: %v", r.ID, err)
		}
		if r.Custom["unmapped"] == "" {
			delete(got.Custom, "unmapped")
			if len(got.Custom) == 0 {
				got.Custom = nil
			}
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v\ndoc %v", got, r, doc)
		}
	}
	// What a client sends: strings trimmed, workerType lower-cased, a
	// dateTime's date, an untyped e-mail.
	doc := map[string]any{"userName": " u ", "emails": []any{map[string]any{"value": "u@x"}},
		RosterSchema: map[string]any{"workerType": "Intern", "startDate": "2026-02-01T00:00:00-08:00"}}
	got, err := cm.toRecord(doc, &lifecycle.HRRecord{ID: "w-9", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.UserName != "u" || got.Email != "u@x" || got.WorkerType != "intern" || got.StartDate != "2026-02-01" || !got.Active {
		t.Errorf("toRecord = %+v", got)
	}
	for _, bad := range []map[string]any{
		{"userName": "u", RosterSchema: map[string]any{"endDate": "31/12/2026"}},
		{"userName": "u", "title": 5},
		{"userName": "u", "active": "sometimes"},
		{"title": "no userName"},
	} {
		if _, err := cm.toRecord(bad, &lifecycle.HRRecord{ID: "w-9"}); err == nil {
			t.Errorf("toRecord(%v): no error", bad)
		}
	}
}

// A custom mapping changes what the service provider serves and reads.
func TestCustomMappingServed(t *testing.T) {
	m := DefaultMapping()
	m["location"] = `addresses[type eq "work"].locality`
	m["custom:badge"] = RosterSchema + ":badgeColor"
	h := newHarness(t, newFakeStore(), func(o *SCIMOptions) { o.Mapping = m })
	id := h.createUser("a@b.c", `,"addresses":[{"type":"work","locality":"Berlin"}],"`+RosterSchema+`":{"badgeColor":"red"}`)
	w := h.worker(id)
	if w.HR.Location != "Berlin" || w.HR.Custom["badge"] != "red" {
		t.Fatalf("stored %+v", w.HR)
	}
	r := h.do("GET", "/Schemas/"+RosterSchema, "").must(t, http.StatusOK)
	if !strings.Contains(string(r.raw), `"badgeColor"`) {
		t.Errorf("the Roster schema lacks badgeColor: %s", r.raw)
	}
	h.do("PATCH", "/Users/"+id, patchBody(`{"op":"replace","path":"addresses[type eq \"work\"].locality","value":"Paris"}`)).must(t, http.StatusOK)
	if w := h.worker(id); w.HR.Location != "Paris" {
		t.Errorf("location = %q", w.HR.Location)
	}
	if _, err := NewSCIM(SCIMOptions{Store: newFakeStore(), Tokens: []Token{{"a", "b"}}, Mapping: Mapping{"title": "title"}}); err == nil {
		t.Errorf("NewSCIM accepted a mapping without userName")
	}
}

func TestNormalizeFilter(t *testing.T) {
	tests := []struct{ in, want string }{
		{`userName eq "a"`, `userName eq "a"`},
		{`emails[type eq "work"].value eq "a@b.c"`, `emails[type eq "work" and value eq "a@b.c"]`},
		{`emails[type eq "work"].value pr`, `emails[type eq "work" and value pr]`},
		{`emails[type eq "work"].value Eq "a" and userName sw "x"`, `emails[type eq "work" and value eq "a"] and userName sw "x"`},
		{`emails[type eq 'work'].value eq 'a"b'`, `emails[type eq "work" and value eq "a\"b"]`},
		{`emails[type eq "work" or type eq "home"].value eq "a"`, `emails[type eq "work" or type eq "home"].value eq "a"`},
		{`userName eq "x].value eq \"y"`, `userName eq "x].value eq \"y"`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
	}
	for _, tt := range tests {
		if got := normalizeFilter(tt.in); got != tt.want {
			t.Errorf("normalizeFilter(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
