package githubfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// call makes one request and returns the status, headers and body.
func call(t *testing.T, s *Server, auth, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestFakeBehavesLikeGitHub(t *testing.T) {
	s := New(Options{Org: "acme", Teams: []string{"backend"}, Users: []string{"alice", "bob"}})
	defer s.Close()
	bearer, token := "Bearer "+s.Token(), "token "+s.Token()
	aliceID := s.AddUser("alice")

	steps := []struct {
		name, auth, method, path, body string
		want                           int
	}{
		{"no auth", "", "GET", "/orgs/acme/members", "", 401},
		{"wrong token", "Bearer nope", "GET", "/orgs/acme/members", "", 401},
		{"other org", bearer, "GET", "/orgs/hooli/members", "", 404},
		{"bad enum", bearer, "GET", "/orgs/acme/members?role=owner", "", 422},
		{"unknown param", bearer, "GET", "/orgs/acme/members?foo=1", "", 422},
		// GitHub invites a user who is not in the org when they are added to a team.
		{"team PUT for a stranger", bearer, "PUT", "/orgs/acme/teams/backend/memberships/bob", `{"role":"member"}`, 200},
		{"invite alice", token, "POST", "/orgs/acme/invitations", `{"invitee_id":` + itoa(aliceID) + `,"role":"direct_member"}`, 201},
		{"invite alice again", bearer, "POST", "/orgs/acme/invitations", `{"invitee_id":` + itoa(aliceID) + `}`, 422},
		{"unknown body field", bearer, "POST", "/orgs/acme/invitations", `{"email":"x@y.z","rol":"admin"}`, 422},
		{"both ids", bearer, "POST", "/orgs/acme/invitations", `{"email":"x@y.z","invitee_id":1}`, 422},
		{"reinstate a stranger", bearer, "POST", "/orgs/acme/invitations", `{"email":"x@y.z","role":"reinstate"}`, 422},
		{"team PUT while invited", bearer, "PUT", "/orgs/acme/teams/backend/memberships/alice", `{"role":"maintainer"}`, 200},
		{"bad team role", bearer, "PUT", "/orgs/acme/teams/backend/memberships/alice", `{"role":"owner"}`, 422},
		{"unknown team", bearer, "PUT", "/orgs/acme/teams/nosuch/memberships/alice", `{}`, 404},
		{"remove a non-member", bearer, "DELETE", "/orgs/acme/memberships/nobody", "", 404},
		{"team DELETE of a non-member", bearer, "DELETE", "/orgs/acme/teams/backend/memberships/nobody", "", 404},
		{"unknown user", bearer, "GET", "/users/nobody", "", 404},
		{"wrong method", bearer, "PATCH", "/orgs/acme/members", "", 405},
	}
	for _, st := range steps {
		if got, _, body := call(t, s, st.auth, st.method, st.path, st.body); got != st.want {
			t.Errorf("%s: %s %s = %d (%s), want %d", st.name, st.method, st.path, got, body, st.want)
		}
	}
	if got := s.PendingTeamMembers("backend"); got["alice"] != "maintainer" {
		t.Errorf("pending team memberships %v", got)
	}
	if _, err := s.AcceptInvitation("alice"); err != nil {
		t.Fatal(err)
	}
	if got := s.TeamMembers("backend"); got["alice"] != "maintainer" {
		t.Errorf("after acceptance the team is %v", got)
	}
	if got := s.Members(); got["alice"] != "member" {
		t.Errorf("members %v", got)
	}
	// Removing a member takes them out of every team.
	if code, _, _ := call(t, s, bearer, "DELETE", "/orgs/acme/memberships/alice", ""); code != 204 {
		t.Errorf("remove alice: %d", code)
	}
	if got := s.TeamMembers("backend"); len(got) != 0 {
		t.Errorf("team after removal %v", got)
	}
	// A former member can be reinstated.
	if code, _, body := call(t, s, bearer, "POST", "/orgs/acme/invitations", `{"invitee_id":`+itoa(aliceID)+`,"role":"reinstate"}`); code != 201 {
		t.Errorf("reinstate: %d %s", code, body)
	}
	writes := s.Writes()
	if len(writes) != 5 || writes[0].Target != "bob" || writes[0].What != "invite" || writes[1].What != "invite" || writes[1].Detail != "direct_member" || writes[3].What != "remove" {
		t.Errorf("write log %+v", writes)
	}
	if got := s.PendingTeamMembers("backend"); got["bob"] != "member" {
		t.Errorf("bob, added to a team while unaffiliated, is not pending in it: %v", got)
	}
}

func TestFakeETagsAndRateLimit(t *testing.T) {
	s := New(Options{RateLimit: 5})
	defer s.Close()
	for i := range 5 {
		s.AddMember("user"+itoa(int64(i)), "member")
	}
	auth := "Bearer " + s.Token()
	code, h, body := call(t, s, auth, "GET", "/orgs/acme/members?per_page=2", "")
	var page []map[string]any
	if err := json.Unmarshal([]byte(body), &page); err != nil || code != 200 || len(page) != 2 {
		t.Fatalf("page 1: %d %v %s", code, err, body)
	}
	if link := h.Get("Link"); !strings.Contains(link, `page=2&per_page=2>; rel="next"`) || !strings.Contains(link, `page=3&per_page=2>; rel="last"`) {
		t.Errorf("Link %q", link)
	}
	etag := h.Get("ETag")
	if h.Get("X-RateLimit-Remaining") != "4" || h.Get("X-RateLimit-Limit") != "5" || h.Get("X-RateLimit-Reset") == "" {
		t.Errorf("rate headers %v", h)
	}
	code, h, body = call(t, s, auth, "GET", "/orgs/acme/members?per_page=2", "", "If-None-Match", etag)
	if code != 304 || body != "" || h.Get("X-RateLimit-Remaining") != "4" {
		t.Errorf("conditional GET: %d %q remaining %s", code, body, h.Get("X-RateLimit-Remaining"))
	}
	for range 4 {
		call(t, s, auth, "GET", "/orgs/acme/teams", "")
	}
	code, h, _ = call(t, s, auth, "GET", "/orgs/acme/teams", "")
	if code != 403 || h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("over the limit: %d remaining %s", code, h.Get("X-RateLimit-Remaining"))
	}
	c := s.Calls()
	if c.Total != 7 || c.NotModified != 1 || c.RateLimited != 6 || c.ByRoute["GET /orgs/{org}/teams"] != 5 {
		t.Errorf("calls %+v", c)
	}
}

func TestFakeFaultsAreSeeded(t *testing.T) {
	run := func() []string {
		s := New(Options{Faults: Faults{Rate429: 0.3, Rate5xx: 0.3, RetryAfter: -1, Seed: 42}})
		defer s.Close()
		var out []string
		for range 20 {
			code, h, _ := call(t, s, "Bearer "+s.Token(), "GET", "/orgs/acme/members", "")
			out = append(out, itoa(int64(code))+h.Get("Retry-After"))
		}
		return out
	}
	a, b := run(), run()
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if !strings.Contains(strings.Join(a, ","), "4290") || !strings.Contains(strings.Join(a, ","), "502") {
		t.Errorf("no 429 (Retry-After 0) or 502 among %v", a)
	}
}
