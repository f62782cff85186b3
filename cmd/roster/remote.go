package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/lifecycle/hr"
)

// apiBase is the admin API's path prefix.
const apiBase = "/api/v1"

// Kinds of admin API errors, for the errors a command tells apart.
const (
	kindApprovalRequired = "approval_required" // *lifecycle.ApprovalRequiredError
	kindPlanChanged      = "plan_changed"      // *lifecycle.PlanChangedError
	kindChain            = "audit_chain"       // *audit.ChainError
	kindNotFound         = "not_found"         // wraps lifecycle.ErrNotFound
	kindPolicy           = "policy"            // a policy set that does not load
	kindInvalid          = "invalid"           // input the operation rejects (a bad CSV file, a policy)
	kindBadRequest       = "bad_request"
	kindUnauthorized     = "unauthorized"
	kindForbidden        = "forbidden"
	kindConflict         = "conflict"
	kindInternal         = "internal"
)

// How a streamed export ends. HTTP trailers carry the record count and
// any error for plain HTTP clients; the CLI asks (framed=1) for a last
// line instead, endMarker followed by JSON {records, error}, because
// proxies that terminate TLS (nginx among them) drop trailers.
const (
	trailerRecords = "Roster-Records"
	trailerError   = "Roster-Error"
	endMarker      = "#roster-export-end "
)

// exportEnd is the JSON after endMarker.
type exportEnd struct {
	Records int    `json:"records"`
	Error   string `json:"error,omitempty"`
}

// remoteError is an error as the admin API sends it: the message the
// server's error printed (a command prints the same text in either
// mode), a kind, and the fields of the typed errors commands look at.
type remoteError struct {
	Message string `json:"error"`
	Kind    string `json:"kind,omitempty"`
	// approval_required
	PlanID   string   `json:"planId,omitempty"`
	Exceeded []string `json:"exceeded,omitempty"`
	// audit_chain
	Seq    uint64 `json:"seq,omitempty"`
	Reason string `json:"reason,omitempty"`
	// plan_changed
	Reviewed string `json:"reviewed,omitempty"`
	Current  string `json:"current,omitempty"`
	Steps    int    `json:"steps,omitempty"`
}

func (e *remoteError) Error() string { return e.Message }

// errorBody is the body of an admin API answer with a status of 400 or
// more: the error and, when the operation did part of its work, its
// result.
type errorBody struct {
	remoteError
	Result json.RawMessage `json:"result,omitempty"`
}

// wrapped is an error with the server's message that still matches its
// sentinel with errors.Is.
type wrapped struct {
	msg    string
	target error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.target }

// typed turns the wire form back into the error the local backend
// returns, so that commands handle both alike.
func (e *remoteError) typed() error {
	switch e.Kind {
	case kindApprovalRequired:
		return &lifecycle.ApprovalRequiredError{PlanID: e.PlanID, Exceeded: e.Exceeded}
	case kindPlanChanged:
		return &lifecycle.PlanChangedError{Reviewed: e.Reviewed, Current: e.Current, Steps: e.Steps}
	case kindChain:
		return &audit.ChainError{Seq: e.Seq, Reason: e.Reason}
	case kindNotFound:
		return &wrapped{msg: e.Message, target: lifecycle.ErrNotFound}
	}
	return e
}

// remoteBackend is a `roster serve` reached through its admin API: over
// the data dir's Unix socket, or over HTTPS with a bearer token.
type remoteBackend struct {
	hc    *http.Client
	base  string // scheme://host, without the API path
	token string
	where string // for messages
}

// newSocketRemote reaches the server listening on the Unix socket sock.
func newSocketRemote(sock string) *remoteBackend {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: remoteDialTimeout}
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:          2,
		ResponseHeaderTimeout: remoteAnswerTimeout,
	}
	return &remoteBackend{hc: &http.Client{Transport: tr}, base: "http://roster", where: "roster serve on " + sock}
}

// newRemote reaches the server at rawURL with a bearer token.
func newRemote(rawURL, token string) (*remoteBackend, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want a URL such as https://roster.example.com:8443", rawURL)
	}
	if token == "" {
		return nil, errors.New("--server needs an admin API token: pass --token TOKEN or set ROSTER_TOKEN")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("--server %s: refusing to send an admin token in cleartext to a remote host; use https://", rawURL)
	}
	base := u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
	base = strings.TrimSuffix(base, apiBase)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: remoteDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = remoteDialTimeout
	tr.ResponseHeaderTimeout = remoteAnswerTimeout
	return &remoteBackend{hc: &http.Client{Transport: tr}, base: base, token: token, where: base}, nil
}

// How long the CLI waits for a server: to connect, and for the first byte
// of an answer (a plan reads every app; the server gives up on one after
// maxPlanTime).
const (
	remoteDialTimeout   = 10 * time.Second
	remoteAnswerTimeout = maxPlanTime + time.Minute
)

// isLoopbackHost reports whether host names this machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *remoteBackend) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// request sends one API request. body is JSON-encoded unless it is an
// io.Reader (sent as is).
func (c *remoteBackend) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ctype = b, "text/csv"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, ctype = bytes.NewReader(buf), "application/json"
	}
	u := c.base + apiBase + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "roster-cli/"+versionString())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API of the %s: %w", c.where, err)
	}
	return resp, nil
}

// do sends a request and decodes the answer into out; an error answer
// becomes its typed error, with out filled from its result if it has one.
func (c *remoteBackend) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("admin API of the %s: %s %s: read the answer: %w", c.where, method, path, err)
		}
		return nil
	}
	return c.errorOf(resp, out)
}

func (c *remoteBackend) errorOf(resp *http.Response, out any) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Message == "" {
		text := strings.TrimSpace(string(b))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = " (a roster serve offers its admin API on its listener only when roster.yaml lists admin tokens)"
		}
		return fmt.Errorf("admin API of the %s: %s %s: HTTP %d: %s%s", c.where, resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, text, hint)
	}
	if len(eb.Result) > 0 && out != nil {
		_ = json.Unmarshal(eb.Result, out)
	}
	return eb.typed()
}

func (c *remoteBackend) Plan(ctx context.Context, proposed *proposedPolicies) (*lifecycle.Plan, error) {
	var p lifecycle.Plan
	if proposed == nil {
		if err := c.do(ctx, http.MethodGet, "/plan", nil, nil, &p); err != nil {
			return nil, err
		}
		return &p, nil
	}
	if err := proposed.read(); err != nil {
		return nil, err
	}
	// A proposed set that does not load comes back with the message the
	// local backend gives: "proposed policies in DIR: FILE:LINE:COL: …".
	if err := c.do(ctx, http.MethodPost, "/plan", nil, proposed, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (c *remoteBackend) Review(ctx context.Context, actor string) (*lifecycle.Plan, *lifecycle.Report, error) {
	p, err := c.Plan(ctx, nil)
	return p, nil, err
}

// applyRequest is the body of POST /apply.
type applyRequest struct {
	// Fingerprint is the reviewed plan's (lifecycle.Plan.Fingerprint).
	Fingerprint string `json:"fingerprint"`
}

func (c *remoteBackend) Apply(ctx context.Context, actor string, reviewed *lifecycle.Plan) (*lifecycle.ApplyResult, error) {
	var res lifecycle.ApplyResult
	err := c.do(ctx, http.MethodPost, "/apply", nil, applyRequest{Fingerprint: reviewed.Fingerprint()}, &res)
	if res.Plan == nil {
		res.Plan = reviewed
	}
	return &res, err
}

func (c *remoteBackend) Approve(ctx context.Context, actor, id string) (*lifecycle.ApproveResult, error) {
	var res lifecycle.ApproveResult
	err := c.do(ctx, http.MethodPost, "/plans/"+url.PathEscape(id)+"/approve", nil, nil, &res)
	if res.Plan == nil && res.Report == nil {
		return nil, err
	}
	return &res, err
}

// rejectRequest is the body of POST /plans/{id}/reject.
type rejectRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (c *remoteBackend) Reject(ctx context.Context, actor, id, reason string) (*lifecycle.SavedPlan, error) {
	var sp lifecycle.SavedPlan
	if err := c.do(ctx, http.MethodPost, "/plans/"+url.PathEscape(id)+"/reject", nil, rejectRequest{Reason: reason}, &sp); err != nil {
		return nil, err
	}
	return &sp, nil
}

func (c *remoteBackend) SavedPlans(ctx context.Context) ([]*lifecycle.SavedPlan, error) {
	var out []*lifecycle.SavedPlan
	return out, c.do(ctx, http.MethodGet, "/plans", nil, nil, &out)
}

func (c *remoteBackend) CheckConnectors(ctx context.Context, names []string, timeout time.Duration) ([]connectorCheck, error) {
	q := url.Values{"timeout": {timeout.String()}}
	for _, n := range names {
		q.Add("name", n)
	}
	var out []connectorCheck
	return out, c.do(ctx, http.MethodGet, "/connectors/check?"+q.Encode(), nil, nil, &out)
}

func (c *remoteBackend) Status(ctx context.Context) (*lifecycle.StatusReport, error) {
	var st lifecycle.StatusReport
	if err := c.do(ctx, http.MethodGet, "/status", nil, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (c *remoteBackend) Workers(ctx context.Context) ([]workerSummary, error) {
	var out []workerSummary
	return out, c.do(ctx, http.MethodGet, "/workers", nil, nil, &out)
}

func (c *remoteBackend) Explain(ctx context.Context, key string) (*explanation, error) {
	var x explanation
	if err := c.do(ctx, http.MethodGet, "/workers/"+url.PathEscape(key), nil, nil, &x); err != nil {
		return nil, err
	}
	return &x, nil
}

func (c *remoteBackend) Reload(ctx context.Context, actor string) (*reloadResult, error) {
	var res reloadResult
	if err := c.do(ctx, http.MethodPost, "/reload", nil, nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *remoteBackend) ImportHR(ctx context.Context, actor, name string, data []byte) (*hr.ImportResult, error) {
	var res hr.ImportResult
	if err := c.do(ctx, http.MethodPost, "/hr/import", url.Values{"name": {name}}, bytes.NewReader(data), &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *remoteBackend) VerifyAudit(ctx context.Context) (audit.VerifyResult, error) {
	var res audit.VerifyResult
	err := c.do(ctx, http.MethodGet, "/audit/verify", nil, nil, &res)
	return res, err
}

// filterQuery encodes an audit filter as the export's query.
func filterQuery(format string, f audit.Filter) url.Values {
	q := url.Values{"format": {format}}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("worker", f.Worker)
	set("app", f.App)
	set("type", f.Type)
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	return q
}

// stream runs an export on the server and hands its body to read, as it
// arrives. The server's count and any error after the first byte come in
// trailers.
func (c *remoteBackend) stream(ctx context.Context, format string, f audit.Filter, read func(io.Reader) error) (int, error) {
	q := filterQuery(format, f)
	q.Set("framed", "1")
	resp, err := c.request(ctx, http.MethodGet, "/audit/export", q, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return 0, c.errorOf(resp, nil)
	}
	fr := &framedReader{r: bufio.NewReaderSize(resp.Body, 64<<10)}
	if err := read(fr); err != nil {
		return 0, err
	}
	if fr.end == nil {
		return 0, fmt.Errorf("admin API of the %s: the export ended without its end line (cut off?)", c.where)
	}
	if fr.end.Error != "" {
		return 0, errors.New(fr.end.Error)
	}
	return fr.end.Records, nil
}

// framedReader passes a framed export's lines through, holding each line
// back until the next one arrives, so that the last one (the end line) is
// kept out of the data and parsed into end.
type framedReader struct {
	r       *bufio.Reader
	pending []byte // the line read but not yet passed on
	out     []byte // what is left of the line being passed on
	done    bool
	end     *exportEnd
}

func (f *framedReader) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.done {
			return 0, io.EOF
		}
		line, err := f.r.ReadBytes('\n')
		if len(line) > 0 {
			f.out, f.pending = f.pending, line
		}
		if err == io.EOF {
			f.done = true
			if rest, ok := bytes.CutPrefix(f.pending, []byte(endMarker)); ok {
				var e exportEnd
				if jerr := json.Unmarshal(rest, &e); jerr == nil {
					f.end = &e
					f.pending = nil
				}
			}
			f.out = append(f.out, f.pending...) // no end line: pass it on; the caller reports the cut
			f.pending = nil
		} else if err != nil {
			return 0, err
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

func (c *remoteBackend) ExportAudit(ctx context.Context, w io.Writer, format string, f audit.Filter) (int, error) {
	return c.stream(ctx, format, f, func(r io.Reader) error {
		_, err := io.Copy(w, r)
		return err
	})
}

func (c *remoteBackend) QueryAudit(ctx context.Context, f audit.Filter, fn func(audit.Record) error) error {
	_, err := c.stream(ctx, audit.FormatJSONL, f, func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			var rec audit.Record
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				return fmt.Errorf("admin API of the %s: audit record: %w", c.where, err)
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return sc.Err()
	})
	return err
}
