package hr

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const userSchemas = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]`

func patchBody(ops string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
}

// TestErrors: every bad request gets its status and a SCIM error body,
// and the store is left exactly as it was.
func TestErrors(t *testing.T) {
	store := newFakeStore()
	h := newHarness(t, store, func(o *SCIMOptions) { o.MaxBody = 4096 })
	id := h.createUser("erlich@aviato.com", `,"externalId":"ext-1"`)
	h.createUser("big.head@piedpiper.com", "")
	gid := str(h.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Aviato"}`).must(t, http.StatusCreated).m, "id")
	filter := func(f string) string { return "/Users?filter=" + url.QueryEscape(f) }
	auth := map[string]string{"Authorization": "Bearer " + testToken}

	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		hdr      map[string]string // replaces the default Authorization
		status   int
		scimType string
	}{
		{"malformed JSON", "POST", "/Users", `{"schemas":[`, nil, 400, "invalidSyntax"},
		{"trailing garbage", "POST", "/Users", `{` + userSchemas + `,"userName":"x"} {}`, nil, 400, "invalidSyntax"},
		{"not an object", "POST", "/Users", `["userName"]`, nil, 400, "invalidSyntax"},
		{"malformed PATCH", "PATCH", "/Users/" + id, `{"Operations":`, nil, 400, "invalidSyntax"},
		{"userName a number", "POST", "/Users", `{` + userSchemas + `,"userName":5}`, nil, 400, "invalidValue"},
		{"no userName", "POST", "/Users", `{` + userSchemas + `,"title":"x"}`, nil, 400, "invalidValue"},
		{"active not a boolean", "POST", "/Users", `{` + userSchemas + `,"userName":"x","active":"maybe"}`, nil, 400, "invalidValue"},
		{"emails a string", "POST", "/Users", `{` + userSchemas + `,"userName":"x","emails":"x@y.z"}`, nil, 400, "invalidValue"},
		{"name a string", "PUT", "/Users/" + id, `{` + userSchemas + `,"userName":"x","name":"X Y"}`, nil, 400, "invalidValue"},
		{"bad workerType", "POST", "/Users", `{` + userSchemas + `,"userName":"x","` + RosterSchema + `":{"workerType":"robot"}}`, nil, 400, "invalidValue"},
		{"bad startDate", "POST", "/Users", `{` + userSchemas + `,"userName":"x","` + RosterSchema + `":{"startDate":"next monday"}}`, nil, 400, "invalidValue"},
		{"PATCH wrong type", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"title","value":42}`), nil, 400, "invalidValue"},
		{"PATCH active not a boolean", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"active","value":"perhaps"}`), nil, 400, "invalidValue"},
		{"PATCH unknown path", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"shoeSize","value":"42"}`), nil, 400, "invalidPath"},
		{"PATCH remove without path", "PATCH", "/Users/" + id, patchBody(`{"op":"remove"}`), nil, 400, "noTarget"},
		{"PATCH path not a string", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":5,"value":{"title":"x"}}`), nil, 400, "invalidSyntax"},
		{"PATCH op not a string", "PATCH", "/Users/" + id, patchBody(`{"op":true,"path":"title","value":"x"}`), nil, 400, "invalidSyntax"},
		{"PATCH unknown op", "PATCH", "/Users/" + id, patchBody(`{"op":"merge","path":"title","value":"x"}`), nil, 400, "invalidValue"},
		{"PATCH no schemas", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`, nil, 400, "invalidValue"},
		{"PATCH removes userName", "PATCH", "/Users/" + id, patchBody(`{"op":"remove","path":"userName"}`), nil, 400, "invalidValue"},
		{"PATCH groups is read-only", "PATCH", "/Users/" + id, patchBody(`{"op":"add","path":"groups","value":[{"value":"g"}]}`), nil, 400, "mutability"},
		{"bad filter syntax", "GET", filter(`userName eq`), "", nil, 400, "invalidFilter"},
		{"filter on unknown attribute", "GET", filter(`shoeSize eq "42"`), "", nil, 400, "invalidFilter"},
		{"filter with or in a value path", "GET", filter(`emails[type eq "work" or type eq "home"].value eq "x"`), "", nil, 400, "invalidFilter"},
		{"filter gt on a boolean", "GET", filter(`active gt true`), "", nil, 400, "invalidFilter"},
		{"group filter unknown attribute", "GET", "/Groups?filter=" + url.QueryEscape(`userName eq "x"`), "", nil, 400, "invalidFilter"},
		{"oversized body", "POST", "/Users", `{` + userSchemas + `,"userName":"x","title":"` + strings.Repeat("a", 5000) + `"}`, nil, 413, ""},
		{"oversized PATCH", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"title","value":"` + strings.Repeat("a", 5000) + `"}`), nil, 413, ""},
		{"no token", "POST", "/Users", `{` + userSchemas + `,"userName":"x"}`, map[string]string{}, 401, ""},
		{"wrong token", "DELETE", "/Users/" + id, "", map[string]string{"Authorization": "Bearer nope"}, 401, ""},
		{"token of another length", "GET", "/Users", "", map[string]string{"Authorization": "Bearer " + testToken + "x"}, 401, ""},
		{"basic auth", "GET", "/Users/" + id, "", map[string]string{"Authorization": "Basic " + testToken}, 401, ""},
		{"unknown user GET", "GET", "/Users/w-nope", "", nil, 404, ""},
		{"unknown user PATCH", "PATCH", "/Users/w-nope", patchBody(`{"op":"replace","path":"title","value":"x"}`), nil, 404, ""},
		{"unknown user PUT", "PUT", "/Users/w-nope", `{` + userSchemas + `,"userName":"x"}`, nil, 404, ""},
		{"unknown user DELETE", "DELETE", "/Users/w-nope", "", nil, 404, ""},
		{"unknown group", "PATCH", "/Groups/g-nope", patchBody(`{"op":"add","path":"members","value":[{"value":"` + id + `"}]}`), nil, 404, ""},
		{"unknown endpoint", "GET", "/Widgets", "", nil, 404, ""},
		{"duplicate userName", "POST", "/Users", `{` + userSchemas + `,"userName":"erlich@aviato.com"}`, nil, 409, "uniqueness"},
		{"duplicate userName other case", "POST", "/Users", `{` + userSchemas + `,"userName":"ERLICH@Aviato.com"}`, nil, 409, "uniqueness"},
		{"duplicate userName by PATCH", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"userName","value":"Big.Head@piedpiper.com"}`), nil, 409, "uniqueness"},
		{"duplicate externalId", "POST", "/Users", `{` + userSchemas + `,"userName":"x","externalId":"ext-1"}`, nil, 409, "uniqueness"},
		{"If-Match mismatch", "PATCH", "/Users/" + id, patchBody(`{"op":"replace","path":"title","value":"x"}`), map[string]string{"If-Match": `W/"99"`, "Authorization": auth["Authorization"]}, 412, ""},
		{"group unknown member", "PATCH", "/Groups/" + gid, patchBody(`{"op":"add","path":"members","value":[{"value":"w-nope"}]}`), nil, 400, "invalidValue"},
		{"group without displayName", "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}`, nil, 400, "invalidValue"},
		{"group member a group", "PATCH", "/Groups/" + gid, patchBody(`{"op":"add","path":"members","value":[{"value":"` + gid + `","type":"Group"}]}`), nil, 400, "invalidValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := store.snapshot()
			hdr := tt.hdr
			if hdr == nil {
				hdr = auth
			}
			r := h.doWith(tt.method, tt.path, tt.body, hdr)
			r.wantError(t, tt.status, tt.scimType)
			if after := store.snapshot(); after != before {
				t.Errorf("the store changed:\nbefore %s\nafter  %s", before, after)
			}
			if tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if strings.Contains(string(r.raw), testToken) {
				t.Errorf("the token is in the response")
			}
		})
	}
	if c := h.takeChanges(); len(c) != 2 {
		t.Errorf("OnChange calls = %d, want 2 (the two creates)", len(c))
	}
}

// TestStoreFailure: a storage error is a 500 without its detail, logged.
func TestStoreFailure(t *testing.T) {
	store := newFakeStore()
	var log syncBuffer
	h := newHarness(t, store, func(o *SCIMOptions) { o.Logger = newTextLogger(&log) })
	id := h.createUser("a@b.c", "")
	store.fail = errors.New("disk on fire at /var/lib/roster")
	r := h.do("PATCH", "/Users/"+id, patchBody(`{"op":"replace","path":"title","value":"x"}`))
	r.wantError(t, 500, "")
	if strings.Contains(string(r.raw), "disk on fire") {
		t.Errorf("the storage error leaked: %s", r.raw)
	}
	if !strings.Contains(log.String(), "disk on fire") {
		t.Errorf("the storage error was not logged: %s", log.String())
	}
	if strings.Contains(log.String(), testToken) {
		t.Errorf("the token was logged")
	}
}

func TestIfMatch(t *testing.T) {
	h := newHarness(t, newFakeStore())
	id := h.createUser("a@b.c", "")
	first := h.do("GET", "/Users/"+id, "").must(t, http.StatusOK).header.Get("Etag")
	auth := "Bearer " + testToken
	tag := first
	for i, m := range []func(string) string{
		func(tag string) string { return tag },
		func(string) string { return "*" },
		func(tag string) string { return `W/"0", ` + strings.TrimPrefix(tag, "W/") }, // a list, strong form
	} {
		r := h.doWith("PATCH", "/Users/"+id, patchBody(`{"op":"replace","path":"title","value":"t`+itoa(i)+`"}`),
			map[string]string{"If-Match": m(tag), "Authorization": auth}).must(t, http.StatusOK)
		if tag = r.header.Get("Etag"); tag == first {
			t.Fatalf("the ETag did not change")
		}
	}
	h.doWith("DELETE", "/Users/"+id, "", map[string]string{"If-Match": first, "Authorization": auth}).wantError(t, 412, "")
	h.doWith("DELETE", "/Users/"+id, "", map[string]string{"If-Match": tag, "Authorization": auth}).must(t, http.StatusNoContent)
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
