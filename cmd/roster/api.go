package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/lifecycle"
)

// The admin API of `roster serve`: JSON resources under /api/v1/ for
// everything the CLI does, served on the admin socket (callers are the
// socket's owner, role admin) and, when admin tokens are configured, on
// the HTTP(S) listener (callers are named by their bearer token, with
// its role). Every call is audited once, after it is answered: api.call,
// or api.refused for a 401 or 403.
//
//	GET  /api/v1/status                 auditor  workers, outbox, pending plans, last reconcile, unreadable apps
//	GET  /api/v1/plan                   auditor  the plan now
//	POST /api/v1/plan                   auditor  the plan with proposed policy files (what-if)
//	POST /api/v1/apply                  admin    re-plan, and carry it out if it is the reviewed one (409 if not)
//	GET  /api/v1/plans                  auditor  saved plans
//	GET  /api/v1/plans/{id}             auditor  one saved plan
//	POST /api/v1/plans/{id}/approve     admin    approve a pending plan and carry it out
//	POST /api/v1/plans/{id}/reject      admin    reject a pending plan
//	GET  /api/v1/workers                auditor  every worker
//	GET  /api/v1/workers/{key}          auditor  one worker, their roles and grants, and why
//	GET  /api/v1/audit/verify           auditor  verify the audit chain
//	GET  /api/v1/audit/export           auditor  stream audit records (JSON Lines or CSV)
//	POST /api/v1/reload                 admin    load the configured policy files again
//	POST /api/v1/hr/import?name=FILE    admin    import an HR CSV file

// Roles of admin API callers.
const (
	roleAdmin   = config.RoleAdmin
	roleAuditor = config.RoleAuditor
)

// Bounds on request bodies.
const (
	maxPolicyUpload = 16 << 20
	maxHRUpload     = 64 << 20
	maxJSONBody     = 1 << 20
)

// caller is who makes an API call.
type caller struct {
	actor string // api:<token name>, socket:<user>, anonymous
	role  string // roleAdmin or roleAuditor; "" when not authenticated
	via   string // socket, http or https
}

type callerKey struct{}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// apiToken is one admin token, kept as the SHA-256 of its secret.
type apiToken struct {
	name, role string
	sum        [sha256.Size]byte
}

// adminAPI serves the admin API of one serve process with the local
// backend bound to its own engine.
type adminAPI struct {
	b      *localBackend
	log    *slog.Logger
	tokens []apiToken
	mux    *http.ServeMux
	// stopping is closed when the engine stops: long operations run
	// until then even if their caller goes away, and no longer.
	stopping <-chan struct{}

	// planSlot lets one plan run at a time.
	planSlot chan struct{}
	// refusals throttles the audit records of refused calls.
	refusals refusalLimiter

	mu      sync.Mutex
	running int
	closed  bool
	idle    *sync.Cond
}

func newAdminAPI(b *localBackend, tokens []apiToken, stopping <-chan struct{}, log *slog.Logger) *adminAPI {
	a := &adminAPI{b: b, tokens: tokens, stopping: stopping, log: log, planSlot: make(chan struct{}, 1)}
	a.idle = sync.NewCond(&a.mu)
	mux := http.NewServeMux()
	read := func(pattern string, h apiHandler) { mux.Handle(pattern, a.allow(false, h)) }
	write := func(pattern string, h apiHandler) { mux.Handle(pattern, a.allow(true, h)) }
	read("GET "+apiBase+"/status", a.status)
	read("GET "+apiBase+"/plan", a.plan)
	read("POST "+apiBase+"/plan", a.plan)
	write("POST "+apiBase+"/apply", a.apply)
	read("GET "+apiBase+"/plans", a.plans)
	read("GET "+apiBase+"/plans/{id}", a.savedPlan)
	write("POST "+apiBase+"/plans/{id}/approve", a.approve)
	write("POST "+apiBase+"/plans/{id}/reject", a.reject)
	read("GET "+apiBase+"/workers", a.workers)
	read("GET "+apiBase+"/workers/{key}", a.worker)
	read("GET "+apiBase+"/connectors/check", a.checkConnectors)
	read("GET "+apiBase+"/audit/verify", a.verify)
	read("GET "+apiBase+"/audit/export", a.export)
	write("POST "+apiBase+"/reload", a.reload)
	write("POST "+apiBase+"/hr/import", a.importHR)
	mux.HandleFunc(apiBase+"/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, &remoteError{Message: fmt.Sprintf("no such admin API resource: %s %s", r.Method, r.URL.Path), Kind: kindNotFound}, nil)
	})
	a.mux = mux
	return a
}

// apiTokens resolves the admin tokens' secrets. A secret that does not
// resolve, or has the value of another admin or SCIM token, is an error
// naming the token and its line in roster.yaml, never a value.
func apiTokens(cfg *config.Config, log *slog.Logger) ([]apiToken, error) {
	scim := map[string]string{}
	if cfg.SCIM != nil {
		for _, t := range cfg.SCIM.Tokens {
			if v, err := cfg.ResolveSecret(t.Secret); err == nil {
				scim[v] = t.Name
			}
		}
	}
	seen := map[string]string{}
	var out []apiToken
	for _, t := range cfg.Admin.Tokens {
		v, err := cfg.ResolveSecret(t.Secret)
		if err != nil {
			return nil, t.Errorf("%w", err)
		}
		if other, dup := seen[v]; dup {
			return nil, t.Errorf("its secret (%s) has the same value as admin token %q's; give each token its own secret so the audit log names the right caller", t.Secret, other)
		}
		if other, dup := scim[v]; dup {
			return nil, t.Errorf("its secret (%s) has the same value as scim token %q's; an HR client must not be able to use the admin API", t.Secret, other)
		}
		seen[v] = t.Name
		if len(v) < minTokenLength {
			log.Warn("admin token is short; use at least 32 random characters (openssl rand -hex 32)", "token", t.Name)
		}
		out = append(out, apiToken{name: t.Name, role: t.Role, sum: sha256.Sum256([]byte(v))})
	}
	return out, nil
}

// tokenCaller authenticates a bearer token: every configured secret is
// compared in constant time (SHA-256 sums, so lengths do not leak).
func (a *adminAPI) tokenCaller(r *http.Request) (caller, bool) {
	via := "http"
	if r.TLS != nil {
		via = "https"
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return caller{actor: "anonymous", via: via}, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	c := caller{actor: "anonymous", via: via}
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			c.actor, c.role = "api:"+t.name, t.role
		}
	}
	return c, c.role != ""
}

type peerKey struct{}

// socketPeer is what ConnContext learns of a socket connection.
type socketPeer struct {
	uid   int
	known bool
}

// socketConnContext records the peer's user id for socketCaller.
func socketConnContext(ctx context.Context, c net.Conn) context.Context {
	uid, ok := peerUID(c)
	return context.WithValue(ctx, peerKey{}, socketPeer{uid: uid, known: ok})
}

// socketCaller names a socket caller by their local user name. The
// socket's mode already lets only serve's own user (and root) connect;
// anyone else the kernel names is refused.
func socketCaller(r *http.Request) (caller, bool) {
	p, _ := r.Context().Value(peerKey{}).(socketPeer)
	uid := os.Getuid()
	if p.known {
		uid = p.uid
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	c := caller{actor: "socket:" + name, role: roleAdmin, via: "socket"}
	if !p.known && peerUIDAlways {
		c.actor, c.role = "socket:unknown", ""
		return c, false
	}
	if p.known && p.uid != os.Getuid() && p.uid != 0 {
		c.role = ""
		return c, false
	}
	return c, true
}

// serve is the API on one listener: authenticate with auth, route, and
// audit the call once it is answered.
func (a *adminAPI) serve(auth func(*http.Request) (caller, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.begin() {
			writeAPIError(w, http.StatusServiceUnavailable, &remoteError{Message: "roster serve is shutting down", Kind: kindInternal}, nil)
			return
		}
		defer a.end()
		rec := &statusRecorder{ResponseWriter: w}
		c, ok := auth(r)
		switch {
		case ok:
			a.mux.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
		case c.via == "socket":
			writeAPIError(rec, http.StatusForbidden, &remoteError{Message: "only the user running roster serve may use its admin socket", Kind: kindForbidden}, nil)
		default:
			rec.Header().Set("WWW-Authenticate", `Bearer realm="roster admin API"`)
			writeAPIError(rec, http.StatusUnauthorized, &remoteError{Message: "missing or unknown admin API token (Authorization: Bearer <token>)", Kind: kindUnauthorized}, nil)
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		a.audit(r, c, rec.status)
	})
}

// audit records one answered call. Calls refused for want of a valid
// token (401, anonymous) are recorded at most refusalBurst at once and
// then one a second, with the number left out: anonymous callers must not
// be able to grow the (never pruned) log at will. Every call of a known
// caller is recorded, refusals (403) included. A recorded path is cut to
// maxAuditPath bytes.
func (a *adminAPI) audit(r *http.Request, c caller, status int) {
	typ := "api.call"
	var suppressed int
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		typ = "api.refused"
	}
	if status == http.StatusUnauthorized {
		var ok bool
		if ok, suppressed = a.refusals.allow(time.Now()); !ok {
			return
		}
	}
	path := r.URL.Path
	if len(path) > maxAuditPath {
		path = strings.ToValidUTF8(path[:maxAuditPath], "") + "…"
	}
	rec := &audit.Record{Type: typ, Actor: c.actor, Message: r.Method + " " + path,
		Details: map[string]string{"method": r.Method, "path": path, "status": strconv.Itoa(status), "via": c.via}}
	if c.role != "" {
		rec.Details["role"] = c.role
	}
	if c.via != "socket" && r.RemoteAddr != "" {
		rec.Details["remote"] = r.RemoteAddr
	}
	if suppressed > 0 {
		rec.Details["refusals_not_recorded"] = strconv.Itoa(suppressed)
	}
	if _, err := a.b.s.engine.Audit().Append(context.WithoutCancel(r.Context()), rec); err != nil {
		a.log.Error("audit an admin API call", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
}

// Limits of the admin API.
const (
	maxAuditPath    = 256              // bytes of a path kept in an audit record
	maxPlanTime     = 10 * time.Minute // one plan (reads every app)
	maxCheckTimeout = 2 * time.Minute  // one app's connectors check
	refusalBurst    = 30               // refusals recorded at once
)

// refusalLimiter is a token bucket for audit records of refused calls:
// refusalBurst at once, then one a second; it counts what it turned down.
type refusalLimiter struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

// allow reports whether a refusal at now may be recorded and, if so, how
// many were turned down since the last one recorded.
func (l *refusalLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = refusalBurst
	} else {
		l.tokens = min(refusalBurst, l.tokens+now.Sub(l.last).Seconds())
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// begin counts a call in; false once the API is closed.
func (a *adminAPI) begin() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.running++
	return true
}

func (a *adminAPI) end() {
	a.mu.Lock()
	a.running--
	if a.running == 0 {
		a.idle.Broadcast()
	}
	a.mu.Unlock()
}

// close refuses new calls and waits for running ones (their operations
// end when the engine stops), so the data file can be closed.
func (a *adminAPI) close() {
	a.mu.Lock()
	a.closed = true
	for a.running > 0 {
		a.idle.Wait()
	}
	a.mu.Unlock()
}

type apiHandler func(w http.ResponseWriter, r *http.Request, c caller)

// allow runs h for callers whose role may: everyone authenticated for
// reads, admins only for writes (403 otherwise).
func (a *adminAPI) allow(write bool, h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r.Context())
		if write && c.role != roleAdmin {
			writeAPIError(w, http.StatusForbidden, &remoteError{
				Message: fmt.Sprintf("%s has the %s role, which may only read (status, plans, workers, the audit log); %s %s needs an admin token", c.actor, c.role, r.Method, r.URL.Path),
				Kind:    kindForbidden}, nil)
			return
		}
		h(w, r, c)
	})
}

// opContext is the context of an operation that changes things: it does
// not end when the caller goes away (an approval half carried out
// because a terminal closed helps nobody), only when the engine stops.
func (a *adminAPI) opContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	go func() {
		select {
		case <-a.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// noWriteDeadline lifts the listener's write timeout for a long
// operation or a stream.
func noWriteDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
}

// writeAPIJSON answers 200 with v.
func writeAPIJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeAPIError answers status with the error and, if the operation did
// part of its work, its result.
func writeAPIError(w http.ResponseWriter, status int, e *remoteError, result any) {
	body := errorBody{remoteError: *e}
	if result != nil {
		if b, err := json.Marshal(result); err == nil {
			body.Result = b
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// toRemote is err in its wire form, with the status it answers.
// fallback is the status of an error of no known kind.
func toRemote(err error, fallback int) (int, *remoteError) {
	var (
		ar *lifecycle.ApprovalRequiredError
		pc *lifecycle.PlanChangedError
		ce *audit.ChainError
		re *remoteError
	)
	e := &remoteError{Message: err.Error()}
	switch {
	case errors.As(err, &ar):
		e.Kind, e.PlanID, e.Exceeded = kindApprovalRequired, ar.PlanID, ar.Exceeded
		return http.StatusConflict, e
	case errors.As(err, &pc):
		e.Kind, e.Reviewed, e.Current, e.Steps = kindPlanChanged, pc.Reviewed, pc.Current, pc.Steps
		return http.StatusConflict, e
	case errors.As(err, &ce):
		e.Kind, e.Seq, e.Reason = kindChain, ce.Seq, ce.Reason
		return http.StatusConflict, e
	case errors.Is(err, lifecycle.ErrNotFound):
		e.Kind = kindNotFound
		return http.StatusNotFound, e
	case errors.As(err, &re) && re.Kind == kindPolicy:
		e.Kind = kindPolicy
		return http.StatusUnprocessableEntity, e
	}
	switch fallback {
	case http.StatusConflict:
		e.Kind = kindConflict
	case http.StatusBadRequest:
		e.Kind = kindBadRequest
	case http.StatusUnprocessableEntity:
		e.Kind = kindInvalid
	default:
		e.Kind = kindInternal
	}
	return fallback, e
}

// answer writes v, or err (with v as the partial result when it is not
// nil).
func answer(w http.ResponseWriter, v any, err error, fallback int) {
	if err == nil {
		writeAPIJSON(w, v)
		return
	}
	status, e := toRemote(err, fallback)
	writeAPIError(w, status, e, v)
}

// decodeBody reads a JSON body of at most limit bytes into v.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeAPIError(w, http.StatusBadRequest, &remoteError{Message: "bad request body: " + err.Error(), Kind: kindBadRequest}, nil)
		return false
	}
	return true
}

func (a *adminAPI) checkConnectors(w http.ResponseWriter, r *http.Request, c caller) {
	timeout, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil || timeout <= 0 || timeout > maxCheckTimeout {
		timeout = min(max(timeout, 30*time.Second), maxCheckTimeout)
	}
	noWriteDeadline(w)
	res, err := a.b.CheckConnectors(r.Context(), r.URL.Query()["name"], timeout)
	answer(w, res, err, http.StatusInternalServerError)
}

func (a *adminAPI) status(w http.ResponseWriter, r *http.Request, c caller) {
	st, err := a.b.Status(r.Context())
	answer(w, st, err, http.StatusInternalServerError)
}

func (a *adminAPI) plan(w http.ResponseWriter, r *http.Request, c caller) {
	var proposed *proposedPolicies
	if r.Method == http.MethodPost {
		proposed = &proposedPolicies{}
		if !decodeBody(w, r, maxPolicyUpload, proposed) {
			return
		}
		if proposed.Files == nil {
			proposed.Files = []proposedFile{} // never read a path of the server's
		}
	}
	// A plan reads every app: it may outlast the listener's write
	// timeout. Plans run one at a time (each is a full snapshot of every
	// app, against their rate limits) and no longer than maxPlanTime.
	noWriteDeadline(w)
	select {
	case a.planSlot <- struct{}{}:
		defer func() { <-a.planSlot }()
	case <-r.Context().Done():
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxPlanTime)
	defer cancel()
	p, err := a.b.Plan(ctx, proposed)
	if err != nil {
		p = nil
	}
	answer(w, jsonPlan(p), err, http.StatusInternalServerError)
}

func (a *adminAPI) apply(w http.ResponseWriter, r *http.Request, c caller) {
	var req applyRequest
	if !decodeBody(w, r, maxJSONBody, &req) {
		return
	}
	if req.Fingerprint == "" {
		writeAPIError(w, http.StatusBadRequest, &remoteError{Message: "apply needs the fingerprint of the plan you reviewed (GET " + apiBase + "/plan)", Kind: kindBadRequest}, nil)
		return
	}
	noWriteDeadline(w)
	ctx, cancel := a.opContext(r)
	defer cancel()
	res, err := a.b.applyChecked(ctx, c.actor, req.Fingerprint)
	if res != nil {
		res.Plan = jsonPlan(res.Plan)
	}
	answer(w, res, err, http.StatusInternalServerError)
}

func (a *adminAPI) plans(w http.ResponseWriter, r *http.Request, c caller) {
	sps, err := a.b.SavedPlans(r.Context())
	if sps == nil {
		sps = []*lifecycle.SavedPlan{}
	}
	answer(w, sps, err, http.StatusInternalServerError)
}

func (a *adminAPI) savedPlan(w http.ResponseWriter, r *http.Request, c caller) {
	s, err := a.b.session(r.Context())
	if err != nil {
		answer(w, nil, err, http.StatusInternalServerError)
		return
	}
	sp, err := s.engine.SavedPlan(r.Context(), r.PathValue("id"))
	answer(w, sp, err, http.StatusInternalServerError)
}

func (a *adminAPI) approve(w http.ResponseWriter, r *http.Request, c caller) {
	noWriteDeadline(w)
	ctx, cancel := a.opContext(r)
	defer cancel()
	res, err := a.b.Approve(ctx, c.actor, r.PathValue("id"))
	if res == nil {
		answer(w, nil, err, http.StatusConflict)
		return
	}
	answer(w, res, err, http.StatusInternalServerError)
}

func (a *adminAPI) reject(w http.ResponseWriter, r *http.Request, c caller) {
	var req rejectRequest
	if !decodeBody(w, r, maxJSONBody, &req) {
		return
	}
	sp, err := a.b.Reject(r.Context(), c.actor, r.PathValue("id"), req.Reason)
	answer(w, sp, err, http.StatusConflict)
}

func (a *adminAPI) workers(w http.ResponseWriter, r *http.Request, c caller) {
	ws, err := a.b.Workers(r.Context())
	if ws == nil {
		ws = []workerSummary{}
	}
	answer(w, ws, err, http.StatusInternalServerError)
}

func (a *adminAPI) worker(w http.ResponseWriter, r *http.Request, c caller) {
	x, err := a.b.Explain(r.Context(), r.PathValue("key"))
	answer(w, x, err, http.StatusInternalServerError)
}

func (a *adminAPI) verify(w http.ResponseWriter, r *http.Request, c caller) {
	noWriteDeadline(w)
	res, err := a.b.VerifyAudit(r.Context())
	if err != nil {
		answer(w, nil, err, http.StatusInternalServerError)
		return
	}
	writeAPIJSON(w, res)
}

// export streams the audit records: headers go out with the first
// record, the count and any later error in trailers.
func (a *adminAPI) export(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = audit.FormatJSONL
	}
	if format != audit.FormatJSONL && format != audit.FormatCSV {
		writeAPIError(w, http.StatusBadRequest, &remoteError{Message: fmt.Sprintf("--format %q: want jsonl or csv", format), Kind: kindBadRequest}, nil)
		return
	}
	f := auditFilter{worker: q.Get("worker"), app: q.Get("app"), typ: q.Get("type"), since: q.Get("since"), until: q.Get("until")}
	flt, err := f.filter()
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, &remoteError{Message: err.Error(), Kind: kindBadRequest}, nil)
		return
	}
	noWriteDeadline(w)
	framed := q.Get("framed") == "1"
	sw := &startWriter{w: w, start: func() {
		ctype := "application/x-ndjson"
		if format == audit.FormatCSV {
			ctype = "text/csv; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		if !framed {
			w.Header().Set("Trailer", trailerRecords+", "+trailerError)
		}
		w.WriteHeader(http.StatusOK)
	}}
	n, err := a.b.ExportAudit(r.Context(), sw, format, flt)
	if err != nil && !sw.started {
		answer(w, nil, err, http.StatusInternalServerError)
		return
	}
	sw.begin()
	if framed {
		end := exportEnd{Records: n}
		if err != nil {
			end.Error = err.Error()
		}
		b, _ := json.Marshal(end)
		_, _ = io.WriteString(w, endMarker+string(b)+"\n")
		return
	}
	if err != nil {
		w.Header().Set(trailerError, err.Error())
	}
	w.Header().Set(trailerRecords, strconv.Itoa(n))
}

// startWriter calls start before the first byte goes out.
type startWriter struct {
	w       io.Writer
	start   func()
	started bool
}

func (s *startWriter) begin() {
	if !s.started {
		s.started = true
		s.start()
	}
}

func (s *startWriter) Write(p []byte) (int, error) {
	s.begin()
	return s.w.Write(p)
}

func (a *adminAPI) reload(w http.ResponseWriter, r *http.Request, c caller) {
	ctx, cancel := a.opContext(r)
	defer cancel()
	res, err := a.b.Reload(ctx, c.actor)
	answer(w, res, err, http.StatusUnprocessableEntity)
}

func (a *adminAPI) importHR(w http.ResponseWriter, r *http.Request, c caller) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "upload.csv"
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHRUpload))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, &remoteError{Message: "read the CSV file: " + err.Error(), Kind: kindBadRequest}, nil)
		return
	}
	noWriteDeadline(w)
	ctx, cancel := a.opContext(r)
	defer cancel()
	res, err := a.b.ImportHR(ctx, "hr-import:"+c.actor, name, data)
	answer(w, res, err, http.StatusUnprocessableEntity)
}
