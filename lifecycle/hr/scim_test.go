package hr

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

const testToken = "s3cret-token-for-tests"

// harness is the SCIM handler over a Store, served on 127.0.0.1.
type harness struct {
	t     testing.TB
	store Store
	srv   *httptest.Server
	token string

	mu      sync.Mutex
	changes []change
}

type change struct {
	id connectors.WorkerID
	tr string
}

func newHarness(t testing.TB, store Store, opts ...func(*SCIMOptions)) *harness {
	t.Helper()
	h := &harness{t: t, store: store, token: testToken}
	o := SCIMOptions{
		Store:  store,
		Tokens: []Token{{Name: "hr", Secret: testToken}, {Name: "okta", Secret: "other-token"}},
		OnChange: func(id connectors.WorkerID, tr string) {
			h.mu.Lock()
			h.changes = append(h.changes, change{id, tr})
			h.mu.Unlock()
		},
	}
	for _, f := range opts {
		f(&o)
	}
	handler, err := NewSCIM(o)
	if err != nil {
		t.Fatalf("NewSCIM: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(BasePath+"/", handler)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) takeChanges() []change {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.changes
	h.changes = nil
	return c
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	raw    []byte
	m      map[string]any
}

func (h *harness) do(method, path string, body string) *resp {
	h.t.Helper()
	return h.doWith(method, path, body, map[string]string{"Authorization": "Bearer " + h.token})
}

func (h *harness) doWith(method, path string, body string, hdr map[string]string) *resp {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+BasePath+path, rd)
	if err != nil {
		h.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := &resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.m); err != nil {
			h.t.Fatalf("%s %s: %d: body is not a JSON object: %v\n%s", method, path, res.StatusCode, err, raw)
		}
	}
	return r
}

// must checks the status and returns the response.
func (r *resp) must(t testing.TB, status int) *resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.raw)
	}
	return r
}

// wantError checks a SCIM error response.
func (r *resp) wantError(t testing.TB, status int, scimType string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/scim+json" {
		t.Errorf("Content-Type %q", ct)
	}
	schemas, _ := r.m["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != errorSchema {
		t.Errorf("schemas = %v, want the Error schema; body %s", r.m["schemas"], r.raw)
	}
	if got, _ := r.m["status"].(string); got != itoa(status) {
		t.Errorf("status field %v, want the string %q", r.m["status"], itoa(status))
	}
	if got, _ := r.m["scimType"].(string); got != scimType {
		t.Errorf("scimType %q, want %q; body %s", got, scimType, r.raw)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// str reads a string at a dotted path ("name.givenName"; a URN segment
// may hold dots, so pass it as one element).
func str(m map[string]any, path ...string) string {
	v := field(m, path...)
	s, _ := v.(string)
	return s
}

func field(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// fixture reads testdata/scim/<name> with {{key}} replaced.
func fixture(t testing.TB, name string, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "scim", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

// worker reads a worker from the store.
func (h *harness) worker(id string) *lifecycle.Worker {
	h.t.Helper()
	w, err := h.store.Worker(h.t.Context(), connectors.WorkerID(id))
	if err != nil {
		h.t.Fatalf("worker %s: %v", id, err)
	}
	return w
}

// createUser POSTs a minimal user and returns its id.
func (h *harness) createUser(userName string, extra string) string {
	h.t.Helper()
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + userName + `","active":true` + extra + `}`
	r := h.do("POST", "/Users", body).must(h.t, http.StatusCreated)
	return str(r.m, "id")
}
