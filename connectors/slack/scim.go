package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/httpapi"
)

const (
	scimSchemaUser    = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimSchemaPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	// scimPageSize is the largest page Slack's SCIM API serves.
	scimPageSize = 1000
)

// scimClient talks to Slack's SCIM 2.0 API over plain HTTP.
type scimClient struct {
	base  string // ends in "/"
	token string
	hc    *http.Client
}

// scimUser is the part of a SCIM user resource Roster reads and writes.
type scimUser struct {
	Schemas     []string    `json:"schemas,omitempty"`
	ID          string      `json:"id,omitempty"`
	ExternalID  string      `json:"externalId,omitempty"`
	UserName    string      `json:"userName,omitempty"`
	DisplayName string      `json:"displayName,omitempty"`
	Name        *scimName   `json:"name,omitempty"`
	Emails      []scimEmail `json:"emails,omitempty"`
	Active      *bool       `json:"active,omitempty"`
}

type scimName struct {
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

type scimEmail struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary,omitempty"`
}

// email returns the primary e-mail, or the first one.
func (u *scimUser) email() string {
	for _, e := range u.Emails {
		if e.Primary {
			return e.Value
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Value
	}
	return ""
}

// active reads the active flag; Slack always sends it, an absent one is
// taken as active.
func (u *scimUser) active() bool { return u.Active == nil || *u.Active }

type scimList struct {
	TotalResults int        `json:"totalResults"`
	StartIndex   int        `json:"startIndex"`
	ItemsPerPage int        `json:"itemsPerPage"`
	Resources    []scimUser `json:"Resources"`
}

type scimPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

type scimPatch struct {
	Schemas    []string      `json:"schemas"`
	Operations []scimPatchOp `json:"Operations"`
}

// scimErrorBody reads both SCIM error forms Slack has used: RFC 7644
// (detail, status) and SCIM 1.1 ({"Errors":{"description","code"}}).
type scimErrorBody struct {
	Detail   string          `json:"detail"`
	Status   json.RawMessage `json:"status"`
	ScimType string          `json:"scimType"`
	Errors   json.RawMessage `json:"Errors"`
}

func (b scimErrorBody) message() string {
	if b.Detail != "" {
		if b.ScimType != "" {
			return b.ScimType + ": " + b.Detail
		}
		return b.Detail
	}
	var one struct {
		Description string `json:"description"`
	}
	if json.Unmarshal(b.Errors, &one) == nil && one.Description != "" {
		return one.Description
	}
	var many []struct {
		Description string `json:"description"`
	}
	if json.Unmarshal(b.Errors, &many) == nil && len(many) > 0 {
		return many[0].Description
	}
	return ""
}

// do sends one SCIM request. A 2xx answer is decoded into out (when not
// nil); any other is a *connectors.Error whose kind follows the status
// (404 NotFound, 409 Conflict, 429 RateLimited with RetryAfter…). Errors
// name op and the status, never the URL's query or the token.
func (c *scimClient) do(ctx context.Context, op, method, path string, query url.Values, in, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return httpapi.Error(op, nil, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return httpapi.Error(op, resp, fmt.Errorf("read answer: %w", err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb scimErrorBody
		_ = json.Unmarshal(raw, &eb)
		var cause error
		if m := eb.message(); m != "" {
			cause = errors.New(m)
		}
		return httpapi.Error(op, resp, cause)
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &connectors.Error{Kind: connectors.Transient, Op: op, Err: fmt.Errorf("decode SCIM answer: %w", err)}
	}
	return nil
}

// get reads one user; a missing one is (nil, nil).
func (c *scimClient) get(ctx context.Context, id string) (*scimUser, error) {
	var u scimUser
	err := c.do(ctx, "SCIM get user "+id, http.MethodGet, "Users/"+url.PathEscape(id), nil, nil, &u)
	if connectors.KindOf(err) == connectors.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// filterQuote quotes s as a SCIM filter string.
func filterQuote(s string) string {
	b, _ := json.Marshal(s) // JSON string escaping is the SCIM filter's
	return string(b)
}

// find returns the users whose attr (email or userName) equals value.
func (c *scimClient) find(ctx context.Context, attr, value string) ([]scimUser, error) {
	q := url.Values{"filter": {attr + " eq " + filterQuote(value)}, "startIndex": {"1"}, "count": {"10"}}
	var l scimList
	if err := c.do(ctx, "SCIM find user by "+attr, http.MethodGet, "Users", q, nil, &l); err != nil {
		return nil, err
	}
	return l.Resources, nil
}

// list calls fn with every user, page by page (startIndex/count).
func (c *scimClient) list(ctx context.Context, fn func(scimUser)) error {
	start := 1
	for page := 1; ; page++ {
		q := url.Values{"startIndex": {strconv.Itoa(start)}, "count": {strconv.Itoa(scimPageSize)}}
		var l scimList
		if err := c.do(ctx, fmt.Sprintf("SCIM list users (page %d)", page), http.MethodGet, "Users", q, nil, &l); err != nil {
			return err
		}
		for _, u := range l.Resources {
			fn(u)
		}
		start += len(l.Resources)
		if len(l.Resources) == 0 || start > l.TotalResults {
			return nil
		}
		if page > 100000 {
			return fmt.Errorf("SCIM list users: more than %d pages; stopping", page)
		}
	}
}

func (c *scimClient) create(ctx context.Context, u scimUser) (*scimUser, error) {
	u.Schemas = []string{scimSchemaUser}
	var out scimUser
	if err := c.do(ctx, "SCIM create user "+u.UserName, http.MethodPost, "Users", nil, u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *scimClient) patch(ctx context.Context, id string, ops ...scimPatchOp) error {
	names := make([]string, len(ops))
	for i, o := range ops {
		names[i] = o.Path
	}
	op := fmt.Sprintf("SCIM update user %s (%s)", id, strings.Join(names, ", "))
	return c.do(ctx, op, http.MethodPatch, "Users/"+url.PathEscape(id), nil, scimPatch{Schemas: []string{scimSchemaPatchOp}, Operations: ops}, nil)
}

// deactivate is DELETE /Users/{id}: Slack deactivates the user.
func (c *scimClient) deactivate(ctx context.Context, id string) error {
	return c.do(ctx, "SCIM deactivate user "+id, http.MethodDelete, "Users/"+url.PathEscape(id), nil, nil, nil)
}
