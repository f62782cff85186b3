package hr

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDiscovery(t *testing.T) {
	h := newHarness(t, newFakeStore())
	r := h.do("GET", "/ServiceProviderConfig", "").must(t, http.StatusOK)
	for path, want := range map[string]any{"patch.supported": true, "bulk.supported": false, "filter.supported": true,
		"filter.maxResults": float64(maxResults), "etag.supported": true, "sort.supported": false} {
		if got := field(r.m, strings.Split(path, ".")...); got != want {
			t.Errorf("ServiceProviderConfig %s = %v, want %v", path, got, want)
		}
	}
	if s, _ := r.m["authenticationSchemes"].([]any); len(s) != 1 || str(s[0].(map[string]any), "type") != "oauthbearertoken" {
		t.Errorf("authenticationSchemes = %v", r.m["authenticationSchemes"])
	}

	r = h.do("GET", "/Schemas", "").must(t, http.StatusOK)
	var ids []string
	for _, x := range r.m["Resources"].([]any) {
		ids = append(ids, str(x.(map[string]any), "id"))
	}
	for _, want := range []string{UserSchema, GroupSchema, EnterpriseSchema, RosterSchema} {
		if !slices.Contains(ids, want) {
			t.Errorf("/Schemas lacks %s (has %v)", want, ids)
		}
	}
	r = h.do("GET", "/Schemas/"+RosterSchema, "").must(t, http.StatusOK)
	var attrs []string
	for _, a := range r.m["attributes"].([]any) {
		attrs = append(attrs, str(a.(map[string]any), "name"))
	}
	for _, want := range []string{"startDate", "endDate", "workerType", "location", "team", "githubUsername"} {
		if !slices.Contains(attrs, want) {
			t.Errorf("Roster schema lacks %s (has %v)", want, attrs)
		}
	}

	r = h.do("GET", "/ResourceTypes/User", "").must(t, http.StatusOK)
	if str(r.m, "endpoint") != "/Users" || !strings.Contains(string(r.raw), RosterSchema) || !strings.Contains(string(r.raw), EnterpriseSchema) {
		t.Errorf("ResourceTypes/User = %s", r.raw)
	}
	r = h.do("GET", "/ResourceTypes", "").must(t, http.StatusOK)
	if r.m["totalResults"] != 2.0 {
		t.Errorf("ResourceTypes = %s", r.raw)
	}
	// Discovery needs the token too.
	h.doWith("GET", "/ServiceProviderConfig", "", nil).wantError(t, 401, "")
}

func TestNewSCIMOptions(t *testing.T) {
	s := newFakeStore()
	tests := []struct {
		name string
		o    SCIMOptions
		want string
	}{
		{"no store", SCIMOptions{Tokens: []Token{{"a", "b"}}}, "no store"},
		{"no token", SCIMOptions{Store: s}, "at least one"},
		{"unnamed token", SCIMOptions{Store: s, Tokens: []Token{{"", "b"}}}, "no name"},
		{"empty secret", SCIMOptions{Store: s, Tokens: []Token{{"a", ""}}}, "empty secret"},
		{"same name", SCIMOptions{Store: s, Tokens: []Token{{"a", "b"}, {"a", "c"}}}, "two tokens"},
		{"same secret", SCIMOptions{Store: s, Tokens: []Token{{"a", "b"}, {"c", "b"}}}, "same secret"},
		{"bad mapping", SCIMOptions{Store: s, Tokens: []Token{{"a", "b"}}, Mapping: Mapping{"userName": "userName", "x": "title"}}, "unknown worker attribute"},
	}
	for _, tt := range tests {
		_, err := NewSCIM(tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "b\"") {
			t.Errorf("%s: a secret is in the error: %v", tt.name, err)
		}
	}
}

// Each token's name is the actor of the writes made with it.
func TestActorPerToken(t *testing.T) {
	store := newFakeStore()
	h := newHarness(t, store)
	h.createUser("a@b.c", "")
	h.token = "other-token"
	h.createUser("d@e.f", "")
	if !slices.Equal(store.actors, []string{"scim:hr", "scim:okta"}) {
		t.Errorf("actors = %v", store.actors)
	}
}

// Concurrent PATCHes of one user, each setting another attribute, lose
// none of them.
func TestConcurrentPatchesKeepEveryChange(t *testing.T) {
	store := newFakeStore()
	h := newHarness(t, store)
	id := h.createUser("a@b.c", "")
	store.delay = 5 * time.Millisecond
	paths := []string{"title", "displayName", "nickName", EnterpriseSchema + ":department", EnterpriseSchema + ":division",
		EnterpriseSchema + ":organization", EnterpriseSchema + ":costCenter", EnterpriseSchema + ":employeeNumber",
		RosterSchema + ":team", RosterSchema + ":location", "name.givenName", "name.familyName"}
	var wg sync.WaitGroup
	errs := make(chan string, len(paths))
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("PATCH", "/Users/"+id, patchBody(fmt.Sprintf(`{"op":"add","path":%q,"value":"v%d"}`, p, i)))
			if r.status != http.StatusOK {
				errs <- string(r.raw)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("PATCH: %s", e)
	}
	hr := h.worker(id).HR
	got := []string{hr.Title, hr.DisplayName, hr.Department, hr.Division, hr.Organization, hr.CostCenter, hr.EmployeeNumber,
		hr.Team, hr.Location, hr.GivenName, hr.FamilyName}
	for _, v := range got {
		if v == "" {
			t.Fatalf("an update was lost: %+v", hr)
		}
	}
}

func TestAttributesParameter(t *testing.T) {
	h := newHarness(t, newFakeStore())
	id := h.createUser("a@b.c", `,"title":"T","name":{"givenName":"A","familyName":"B"},"`+EnterpriseSchema+`":{"department":"D"}`)
	r := h.do("GET", "/Users/"+id+"?attributes=userName,"+EnterpriseSchema+":department", "").must(t, http.StatusOK)
	if r.m["title"] != nil || r.m["name"] != nil || str(r.m, "userName") != "a@b.c" || str(r.m, EnterpriseSchema, "department") != "D" || str(r.m, "id") != id {
		t.Errorf("attributes=: %s", r.raw)
	}
	r = h.do("GET", "/Users/"+id+"?excludedAttributes=name.givenName,title,"+EnterpriseSchema, "").must(t, http.StatusOK)
	if r.m["title"] != nil || str(r.m, "name", "givenName") != "" || str(r.m, "name", "familyName") != "B" || r.m[EnterpriseSchema] != nil {
		t.Errorf("excludedAttributes=: %s", r.raw)
	}
}
