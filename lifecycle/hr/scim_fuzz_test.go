package hr

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// serve calls the handler directly (no network), as the fuzz targets do.
func serve(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://roster.test"+BasePath+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// patchSeeds are PATCH bodies real clients send (the fixtures) and a few
// that stray further.
func patchSeeds(t testing.TB) []string {
	vars := map[string]string{"manager": "w-mgr", "a": "w-mgr", "b": "w-0001", "id": "w-0001"}
	var out []string
	for _, dir := range []string{"entra", "okta"} {
		names, err := filepath.Glob(filepath.Join("testdata", "scim", dir, "patch_*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			out = append(out, fixture(t, dir+"/"+filepath.Base(n), vars))
		}
	}
	return append(out,
		patchBody(`{"op":"Remove","path":"emails[type eq \"work\"]"}`),
		patchBody(`{"op":"add","path":"emails","value":[{"type":"home","value":"h@x","primary":"True"}]}`),
		patchBody(`{"op":"replace","path":"emails[type eq \"home\"]","value":{"value":"h2@x"}}`),
		patchBody(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}`),
		patchBody(`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"w-mgr","department":null}}}`),
		patchBody(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:roster:2.0:User:startDate","value":"2026-13-01"}`),
		patchBody(`{"op":"add","path":"name","value":{"givenName":"G","familyName":null}}`),
		patchBody(`{"op":"replace","path":"userName","value":null}`),
		patchBody(`{"op":"remove","path":"emails.value"}`),
		patchBody(`{"op":"replace","path":"phoneNumbers[type eq \"work\" and primary eq true].value","value":"+1"}`),
	)
}

// opSeeds are single operations (op, path, JSON value) for the fuzzer to
// vary part by part.
var opSeeds = [][3]string{
	{"Replace", `emails[type eq "work"].value`, `"b@piedpiper.com"`},
	{"Add", EnterpriseSchema + ":manager", `"w-mgr"`},
	{"Remove", "members", `[{"value":"w-mgr"}]`},
	{"replace", "name.givenName", `"Ann"`},
	{"add", "", `{"name.familyName":"Lee","active":"False"}`},
	{"remove", `emails[type eq "work" and primary eq true]`, ``},
	{"replace", RosterSchema + ":startDate", `"2027-01-04"`},
	{"Add", "phoneNumbers", `[{"type":"work","value":"+1","primary":true}]`},
}

// FuzzApplyPatch sends random PATCH operations for a random user: one
// built from op, path and value, or the raw body when it is set. The
// server must never panic or answer 500; a failed PATCH stores nothing;
// a stored result must map back to the same HR record.
func FuzzApplyPatch(f *testing.F) {
	for i, s := range patchSeeds(f) {
		f.Add("Engineer", "Platform", "a@piedpiper.com", i%2 == 0, "", "", "", s)
	}
	for i, o := range opSeeds {
		f.Add("Engineer", "Platform", "a@piedpiper.com", i%2 == 0, o[0], o[1], o[2], "")
	}
	cm, err := DefaultMapping().compile()
	if err != nil {
		f.Fatal(err)
	}
	// One handler (building one takes milliseconds) over a store emptied
	// for every input: a worker process runs its inputs one at a time.
	store := newFakeStore()
	h, err := NewSCIM(SCIMOptions{Store: store, Tokens: []Token{{Name: "hr", Secret: testToken}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, title, dept, email string, active bool, op, path, value, body string) {
		if body == "" {
			o := map[string]any{"op": op}
			if path != "" {
				o["path"] = path
			}
			var v any
			if json.Unmarshal([]byte(value), &v) == nil {
				o["value"] = v
			} else if value != "" {
				o["value"] = value
			}
			b, err := json.Marshal(map[string]any{"schemas": []string{patchOpSchema}, "Operations": []any{o}})
			if err != nil {
				t.Skip()
			}
			body = string(b)
		}
		store.reset()
		ctx := t.Context()
		for _, rec := range []lifecycle.HRRecord{
			{ID: "w-mgr", UserName: "mgr", Active: true},
			{ID: "w-0001", UserName: "fuzz@x", Title: title, Department: dept, Email: email, Active: active, WorkerType: "employee"},
		} {
			if _, _, err := store.UpsertHR(ctx, "seed", rec); err != nil {
				t.Skip() // a record the engine refuses anyway
			}
		}
		before := store.snapshot()
		res := serve(h, "PATCH", "/Users/w-0001", body)
		switch res.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
			if after := store.snapshot(); after != before {
				t.Fatalf("a %d PATCH changed the store", res.Code)
			}
			return
		default:
			t.Fatalf("status %d: %s\nbody: %s", res.Code, res.Body, body)
		}
		var m map[string]any
		if err := json.Unmarshal(res.Body.Bytes(), &m); err != nil {
			t.Fatalf("response is not JSON: %v", err)
		}
		w, err := store.Worker(ctx, "w-0001")
		if err != nil {
			t.Fatal(err)
		}
		again, err := cm.toRecord(cm.toDoc(&w.HR), &w.HR)
		if err != nil {
			t.Fatalf("the stored record does not map back: %v\n%+v", err, w.HR)
		}
		if d := lifecycle.ChangedFields(&again, &w.HR); len(d) > 0 {
			t.Fatalf("re-mapping changed %v:\n%+v\n%+v", d, w.HR, again)
		}
	})
}

// filterSeeds are filters real clients send, and some that are wrong.
var filterSeeds = []string{
	`userName eq "7f1d8e0a-5b4c-4d7e-9a1b-2c3d4e5f6a7b"`,
	`userName eq "dinesh@piedpiper.com"`,
	`externalId eq "00ujl29u0le5T6Aj10h7"`,
	`emails[type eq "work"].value eq "a@piedpiper.com"`,
	`emails[type eq 'work'].value eq 'a@piedpiper.com'`,
	`emails[type eq "work" and value co "@"]`,
	`emails.value eq "a@piedpiper.com"`,
	`displayName eq "Engineering"`,
	`userName sw "a" or userName ew ".com" and not (active eq false)`,
	`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering"`,
	`meta.lastModified gt "2011-05-13T04:42:34Z"`,
	`members[value eq "w-0001"]`,
	`userName pr`,
	`active eq null`,
	`title gt 5`,
	`userName eq`,
	`emails[type eq "work"].value`,
	`((userName eq "a"))`,
	`emails[type eq "work"].value eq "x"].y eq "z"`,
}

// FuzzFilter sends random list filters. The answer is a list (200) or
// 400 invalidFilter, never a panic or a 500.
func FuzzFilter(f *testing.F) {
	for _, s := range filterSeeds {
		f.Add(s)
	}
	store := newFakeStore()
	ctx := f.Context()
	for _, rec := range []lifecycle.HRRecord{
		{ID: "w-0001", UserName: "a@piedpiper.com", Email: "a@piedpiper.com", Department: "Engineering", Active: true, ExternalID: "x1"},
		{ID: "w-0002", UserName: "b@piedpiper.com", Title: "CEO", Active: false},
		{ID: "w-0003", UserName: "c@hooli.com", Email: "c@hooli.com", Custom: map[string]string{"githubUsername": "c"}, Active: true},
	} {
		if _, _, err := store.UpsertHR(ctx, "seed", rec); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := store.UpsertGroup(ctx, "seed", lifecycle.HRGroup{ID: "g-1", DisplayName: "Engineering", Members: []connectors.WorkerID{"w-0001"}}); err != nil {
		f.Fatal(err)
	}
	h, err := NewSCIM(SCIMOptions{Store: store, Tokens: []Token{{Name: "hr", Secret: testToken}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, flt string) {
		_ = normalizeFilter(flt)
		for _, ep := range []string{"/Users", "/Groups"} {
			res := serve(h, "GET", ep+"?filter="+url.QueryEscape(flt), "")
			var m map[string]any
			if err := json.Unmarshal(res.Body.Bytes(), &m); err != nil {
				t.Fatalf("%s %q: %d, not JSON: %s", ep, flt, res.Code, res.Body)
			}
			switch res.Code {
			case http.StatusOK:
				if n, ok := m["totalResults"].(float64); !ok || n < 0 || n > 3 {
					t.Fatalf("%s %q: totalResults %v", ep, flt, m["totalResults"])
				}
			case http.StatusBadRequest:
			default:
				t.Fatalf("%s %q: status %d: %s", ep, flt, res.Code, res.Body)
			}
		}
	})
}

// TestFuzzCorpusExists keeps the fuzz seeds honest: the fixtures they
// read are there.
func TestFuzzCorpusExists(t *testing.T) {
	if len(patchSeeds(t)) < 15 {
		t.Fatalf("only %d PATCH seeds", len(patchSeeds(t)))
	}
	if _, err := os.Stat(filepath.Join("testdata", "scim", "entra", "patch_mover.json")); err != nil {
		t.Fatal(err)
	}
}
