package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// web calls a Web API method with a form body (token in the form unless
// header is set) and decodes the answer.
func web(t *testing.T, s *Server, method string, args url.Values, header string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+method, strings.NewReader(args.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	return do(t, req, http.StatusOK)
}

func do(t *testing.T, req *http.Request, status int) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, status, b)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v: %s", req.URL.Path, err, b)
		}
	}
	return m
}

func scim(t *testing.T, s *Server, method, path, body, token string, status int) map[string]any {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.SCIMURL()+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req, status)
}

func TestWebAuth(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	for _, tt := range []struct {
		name   string
		args   url.Values
		header string
		want   string
	}{
		{"form token", url.Values{"token": {s.Token}}, "", ""},
		{"bearer", nil, "Bearer " + s.Token, ""},
		{"no token", nil, "", "not_authed"},
		{"wrong token", url.Values{"token": {"xoxp-nope"}}, "", "invalid_auth"},
		{"wrong bearer", nil, "Bearer xoxp-nope", "invalid_auth"},
		{"basic auth", nil, "Basic abc", "invalid_auth"},
	} {
		m := web(t, s, "auth.test", tt.args, tt.header)
		if tt.want == "" && m["ok"] != true || tt.want != "" && m["error"] != tt.want {
			t.Errorf("%s: %v, want error %q", tt.name, m, tt.want)
		}
	}
	s.SetScopes("users:read")
	m := web(t, s, "usergroups.list", url.Values{"token": {s.Token}}, "")
	if m["error"] != "missing_scope" || m["needed"] != "usergroups:read" {
		t.Errorf("usergroups.list without its scope: %v", m)
	}
}

func TestJSONBody(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.AddUsergroup("oncall")
	id := s.AddUser(User{Email: "a@example.com", Active: true})
	body := fmt.Sprintf(`{"usergroup":%q,"users":[%q]}`, s.UsergroupID("oncall"), id)
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"usergroups.users.update", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if m := do(t, req, 200); m["error"] != "not_authed" {
		t.Errorf("JSON without the Authorization header: %v", m)
	}
	req, _ = http.NewRequest(http.MethodPost, s.APIURL()+"usergroups.users.update", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if m := do(t, req, 200); m["ok"] != true || !slices.Equal(s.UsergroupMembers("oncall"), []string{id}) {
		t.Errorf("JSON update: %v, members %v", m, s.UsergroupMembers("oncall"))
	}
}

func TestUsergroupUpdateRejectsEmpty(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	g := s.AddUsergroup("oncall")
	id := s.AddUser(User{Email: "a@example.com", Active: true})
	s.SetUsergroupMembers("oncall", id)
	for _, users := range []string{"", " , "} {
		m := web(t, s, "usergroups.users.update", url.Values{"token": {s.Token}, "usergroup": {g}, "users": {users}}, "")
		if m["error"] != "invalid_users" {
			t.Errorf("users=%q: %v, want invalid_users", users, m)
		}
	}
	if !slices.Equal(s.UsergroupMembers("oncall"), []string{id}) {
		t.Error("a rejected update changed the group")
	}
}

// TestCursorPagination reads every channel member page by page.
func TestCursorPagination(t *testing.T) {
	s := New(Options{PageLimit: 4})
	defer s.Close()
	c := s.AddChannel("eng")
	var want []string
	for i := range 10 {
		want = append(want, s.AddUser(User{Email: fmt.Sprintf("u%d@example.com", i), Active: true}))
	}
	s.AddChannelMembers("eng", want...)
	want = append([]string{s.AdminID()}, want...)
	var got []string
	cursor, pages := "", 0
	for {
		m := web(t, s, "conversations.members", url.Values{"token": {s.Token}, "channel": {c}, "cursor": {cursor}, "limit": {"1000"}}, "")
		for _, id := range m["members"].([]any) {
			got = append(got, id.(string))
		}
		pages++
		cursor = m["response_metadata"].(map[string]any)["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("read %v in %d pages, want %v in 3", got, pages, want)
	}
	if m := web(t, s, "conversations.members", url.Values{"token": {s.Token}, "channel": {c}, "cursor": {"bogus"}}, ""); m["error"] != "invalid_cursor" {
		t.Errorf("bad cursor: %v", m)
	}
}

func TestSCIM(t *testing.T) {
	s := New(Options{PageLimit: 2})
	defer s.Close()
	tok := s.SCIMToken
	if m := scim(t, s, "GET", "Users", "", "", 401); m["detail"] == nil || m["status"] != "401" {
		t.Errorf("no token: %v", m)
	}
	create := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann","externalId":"w-1",
		"emails":[{"value":"ann@example.com","primary":true}],"name":{"givenName":"Ann","familyName":"A"}}`
	u := scim(t, s, "POST", "Users", create, tok, 201)
	id := u["id"].(string)
	if m := scim(t, s, "POST", "Users", create, tok, 409); m["detail"] != "email_taken" {
		t.Errorf("duplicate: %v", m)
	}
	if m := scim(t, s, "POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Not Valid","emails":[{"value":"x@example.com"}]}`, tok, 400); m["scimType"] != "invalidValue" {
		t.Errorf("bad userName: %v", m)
	}
	for i := range 3 {
		scim(t, s, "POST", "Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u%d","emails":[{"value":"u%d@example.com"}]}`, i, i), tok, 201)
	}
	// Five users (the admin too) in pages of two.
	var ids []string
	for start := 1; ; {
		l := scim(t, s, "GET", fmt.Sprintf("Users?startIndex=%d&count=100", start), "", tok, 200)
		res := l["Resources"].([]any)
		for _, r := range res {
			ids = append(ids, r.(map[string]any)["id"].(string))
		}
		start += len(res)
		if len(res) == 0 || start > int(l["totalResults"].(float64)) {
			break
		}
	}
	if len(ids) != 5 || len(slices.Compact(slices.Clone(ids))) != 5 {
		t.Errorf("paged ids %v, want 5 distinct", ids)
	}
	l := scim(t, s, "GET", "Users?filter="+url.QueryEscape(`email eq "ANN@example.com"`), "", tok, 200)
	if l["totalResults"] != float64(1) {
		t.Errorf("filter by e-mail: %v", l)
	}
	if m := scim(t, s, "GET", "Users?filter="+url.QueryEscape(`title eq "x"`), "", tok, 400); m["scimType"] != "invalidFilter" {
		t.Errorf("unsupported filter: %v", m)
	}

	// Deactivation keeps the user readable and drops its memberships.
	s.AddChannel("eng")
	s.AddChannelMembers("eng", id)
	s.AddUsergroup("oncall")
	s.SetUsergroupMembers("oncall", id)
	scim(t, s, "DELETE", "Users/"+id, "", tok, 204)
	if u := scim(t, s, "GET", "Users/"+id, "", tok, 200); u["active"] != false {
		t.Errorf("after DELETE: %v", u)
	}
	if slices.Contains(s.ChannelMembers("eng"), id) || len(s.UsergroupMembers("oncall")) != 0 {
		t.Error("deactivation kept memberships")
	}
	// Entra ID's capitalised ops and string booleans.
	scim(t, s, "PATCH", "Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"True"}]}`, tok, 200)
	scim(t, s, "PATCH", "Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"externalId":"w-2","name":{"givenName":"Anne"}}}]}`, tok, 200)
	if u, _ := s.UserByEmail("ann@example.com"); !u.Active || u.ExternalID != "w-2" || u.GivenName != "Anne" {
		t.Errorf("after PATCH: %+v", u)
	}
	if m := scim(t, s, "PATCH", "Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"x"}]}`, tok, 400); m["scimType"] != "invalidPath" {
		t.Errorf("bad path: %v", m)
	}
	scim(t, s, "GET", "Users/U404", "", tok, 404)
	ops := []string{}
	for _, w := range s.Writes() {
		ops = append(ops, w.Op)
	}
	if want := "scim.create scim.create scim.create scim.create scim.deactivate scim.reactivate scim.update"; strings.Join(ops, " ") != want {
		t.Errorf("write log %q, want %q", ops, want)
	}
}

func TestFaults(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.SetFaults(Faults{First429: 1, RetryAfter: 1500 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodGet, s.APIURL()+"auth.test", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("status %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// A hung request is carried out; its answer never comes.
	g := s.AddUsergroup("oncall")
	id := s.AddUser(User{Email: "a@example.com", Active: true})
	s.SetFaults(Faults{RateHang: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	form := url.Values{"token": {s.Token}, "usergroup": {g}, "users": {id}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.APIURL()+"usergroups.users.update", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("a hung request answered")
	}
	if !slices.Equal(s.UsergroupMembers("oncall"), []string{id}) {
		t.Error("the hung request was not carried out")
	}
	c := s.Calls()
	if c.Total != 2 || c.Throttled != 1 || c.ByMethod["usergroups.users.update"] != 1 || c.ByTier["tier2"] != 1 || c.Limited != 1 {
		t.Errorf("calls = %+v", c)
	}
}
