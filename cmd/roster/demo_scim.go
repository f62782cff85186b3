package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/lifecycle/hr"
)

// SCIM schema URNs the demo writes.
const (
	scimCore       = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	scimRoster     = "urn:ietf:params:scim:schemas:extension:roster:2.0:User"
	scimPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// demoSCIM is the demo's HR system: a SCIM client talking to Roster's own
// SCIM endpoint over loopback HTTP, as Entra ID or Okta would.
type demoSCIM struct {
	out    io.Writer
	engine *lifecycle.Engine
	base   string
	token  string
	srv    *http.Server
	client *http.Client

	mu   sync.Mutex
	last map[connectors.WorkerID]string // transition of the last write
}

func startDemoSCIM(out io.Writer, e *lifecycle.Engine) (*demoSCIM, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	d := &demoSCIM{out: out, engine: e, token: hex.EncodeToString(b), last: map[connectors.WorkerID]string{},
		client: &http.Client{Timeout: 10 * time.Second}}
	h, err := hr.NewSCIM(hr.SCIMOptions{
		Store: e, Tokens: []hr.Token{{Name: "hr-demo", Secret: d.token}},
		OnChange: func(id connectors.WorkerID, tr string) {
			d.mu.Lock()
			d.last[id] = tr
			d.mu.Unlock()
		},
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d.base = "http://" + ln.Addr().String() + "/scim/v2"
	d.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func (d *demoSCIM) close() { _ = d.srv.Close() }

type scimOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

// create POSTs a user built from r and returns the id Roster assigned.
func (d *demoSCIM) create(ctx context.Context, r lifecycle.HRRecord) (connectors.WorkerID, error) {
	user := map[string]any{
		"schemas":     []string{scimCore, scimEnterprise, scimRoster},
		"userName":    r.UserName,
		"name":        map[string]string{"givenName": r.GivenName, "familyName": r.FamilyName},
		"displayName": r.DisplayName,
		"emails":      []map[string]any{{"value": r.Email, "type": "work", "primary": true}},
		"title":       r.Title,
		"active":      r.Active,
		scimEnterprise: map[string]any{
			"department": r.Department, "division": r.Division, "organization": r.Organization,
			"manager": map[string]string{"value": r.Manager},
		},
		scimRoster: map[string]any{
			"workerType": r.WorkerType, "team": r.Team, "location": r.Location,
			"startDate": string(r.StartDate), "githubUsername": r.Custom["githubUsername"],
		},
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := d.do(ctx, http.MethodPost, "/Users", user, http.StatusCreated, &created); err != nil {
		return "", err
	}
	id := connectors.WorkerID(created.ID)
	return id, d.report(ctx, id)
}

// patch sends PATCH operations for one user.
func (d *demoSCIM) patch(ctx context.Context, id connectors.WorkerID, ops []scimOp) error {
	body := map[string]any{"schemas": []string{scimPatchOp}, "Operations": ops}
	if err := d.do(ctx, http.MethodPatch, "/Users/"+string(id), body, 0, nil); err != nil {
		return err
	}
	return d.report(ctx, id)
}

func (d *demoSCIM) report(ctx context.Context, id connectors.WorkerID) error {
	w, err := d.engine.Worker(ctx, id)
	if err != nil {
		return err
	}
	d.mu.Lock()
	tr := d.last[id]
	d.mu.Unlock()
	if tr == "" {
		tr = "no transition"
	}
	fmt.Fprintf(d.out, "    %s %s -> %s, status %s.\n\n", w.ID, w.HR.DisplayName, tr, w.Status)
	return nil
}

func (d *demoSCIM) do(ctx context.Context, method, path string, body any, want int, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "HR -> SCIM: %s /scim/v2%s -> %s\n", method, path, resp.Status)
	ok := resp.StatusCode == want || (want == 0 && resp.StatusCode/100 == 2)
	if !ok {
		return fmt.Errorf("demo: SCIM %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("demo: SCIM %s %s: %w", method, path, err)
		}
		if v, ok := out.(*struct {
			ID string `json:"id"`
		}); ok && v.ID == "" {
			return errors.New("demo: SCIM create returned no id")
		}
	}
	return nil
}
