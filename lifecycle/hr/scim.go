package hr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// Store is what the SCIM service provider needs from the engine;
// *lifecycle.Engine implements it. Errors: lifecycle.ErrNotFound for an
// unknown id, lifecycle.ErrConflict for a userName (case-insensitive) or
// externalId another live worker holds, lifecycle.ErrInvalidRecord for
// values the engine refuses; anything else is a storage failure.
type Store interface {
	// UpsertHR stores a record (audited with actor) and returns the worker
	// and the transition it caused ("" for none). It keeps the stored
	// HRRecord.Groups, and undeletes a deleted worker: callers check first.
	UpsertHR(ctx context.Context, actor string, rec lifecycle.HRRecord) (*lifecycle.Worker, string, error)
	// DeleteHR makes the worker a leaver; it stays in the store with
	// Deleted set.
	DeleteHR(ctx context.Context, actor string, id connectors.WorkerID) (*lifecycle.Worker, string, error)
	Worker(ctx context.Context, id connectors.WorkerID) (*lifecycle.Worker, error)
	// Workers returns every worker, deleted ones included, sorted by id.
	Workers(ctx context.Context) ([]*lifecycle.Worker, error)
	// WorkerByUserName and WorkerByExternalID find live workers only; the
	// userName is compared case-insensitively.
	WorkerByUserName(ctx context.Context, userName string) (*lifecycle.Worker, error)
	WorkerByExternalID(ctx context.Context, externalID string) (*lifecycle.Worker, error)
	NewWorkerID() connectors.WorkerID
	// UpsertGroup replaces a group's displayName, externalId and members
	// and updates its members' HRRecord.Groups (audited).
	UpsertGroup(ctx context.Context, actor string, g lifecycle.HRGroup) (*lifecycle.HRGroup, error)
	DeleteGroup(ctx context.Context, actor string, id string) error
	Group(ctx context.Context, id string) (*lifecycle.HRGroup, error)
	// Groups returns every group sorted by id.
	Groups(ctx context.Context) ([]*lifecycle.HRGroup, error)
	NewGroupID() string
}

var _ Store = (*lifecycle.Engine)(nil)

// Token is one bearer token the SCIM endpoint accepts. Name identifies
// the client in the audit log ("scim:"+Name is the actor of its writes);
// Secret is the resolved secret (surrounding white space, such as a
// secret file's final newline, is ignored), never logged.
type Token struct{ Name, Secret string }

// SCIMOptions configure NewSCIM.
type SCIMOptions struct {
	Store Store
	// Tokens: at least one; names and secrets must be unique.
	Tokens []Token
	// Mapping: nil or empty means DefaultMapping().
	Mapping Mapping
	// MaxBody limits request bodies (default 1 MiB); larger ones get 413.
	MaxBody int64
	// OnChange, when set, is called after each successful write that
	// changed a worker: for a User write with the transition it caused
	// ("" for none), for a Group write once per worker who joined or left
	// the group, with "" (the engine decides whether that moves them).
	// It runs on the request's goroutine and must not block long.
	OnChange func(id connectors.WorkerID, transition string)
	// Logger gets one record per request (Debug; Warn for a refused
	// token) and storage failures (Error); never a token or a body.
	Logger *slog.Logger
	// Now times requests for the log (default time.Now).
	Now func() time.Time
}

// BasePath is the URL path the SCIM handler serves: mount the handler at
// BasePath+"/" as it is, without http.StripPrefix. The SCIM base URL
// clients need is scheme://host + BasePath.
const BasePath = "/scim/v2"

const (
	defaultMaxBody = 1 << 20
	maxResults     = 100
	lockStripes    = 64
)

// NewSCIM builds the SCIM 2.0 service provider: Users, Groups,
// ServiceProviderConfig, Schemas and ResourceTypes under BasePath, on
// github.com/elimity-com/scim. Every request needs a bearer token; every
// write is a Store write audited with the token's name. See Mapping for
// how Users become HR records.
//
// How it fails: a bad option is an error here. At run time, every
// failure is a SCIM error response (RFC 7644 3.12) and nothing is
// stored: 401 for a missing or wrong token, 413 for a body over MaxBody,
// 400 invalidSyntax for malformed JSON, invalidValue for wrong types or
// values the engine refuses, invalidFilter for a filter it cannot
// evaluate, invalidPath/noTarget for PATCH paths, 404 for unknown or
// deleted resources, 409 uniqueness for a userName or externalId another
// live worker holds, 412 for an If-Match that does not match, 500 for a
// storage failure (logged, with no detail in the response).
func NewSCIM(o SCIMOptions) (http.Handler, error) {
	if o.Store == nil {
		return nil, errors.New("scim: no store")
	}
	if len(o.Tokens) == 0 {
		return nil, errors.New("scim: at least one bearer token is needed")
	}
	s := &server{store: o.Store, onChange: o.OnChange, log: o.Logger, now: o.Now, maxBody: o.MaxBody}
	names, secrets := map[string]bool{}, map[[32]byte]bool{}
	for i, t := range o.Tokens {
		if strings.TrimSpace(t.Name) == "" {
			return nil, fmt.Errorf("scim: token %d has no name", i+1)
		}
		secret := strings.TrimSpace(t.Secret) // as the header's token is
		if secret == "" {
			return nil, fmt.Errorf("scim: token %q has an empty secret", t.Name)
		}
		sum := sha256.Sum256([]byte(secret))
		if names[t.Name] {
			return nil, fmt.Errorf("scim: two tokens are named %q", t.Name)
		}
		if secrets[sum] {
			return nil, fmt.Errorf("scim: token %q has the same secret as another token", t.Name)
		}
		names[t.Name], secrets[sum] = true, true
		s.tokens = append(s.tokens, tokenSum{actor: "scim:" + t.Name, sum: sum})
	}
	m := o.Mapping
	if len(m) == 0 {
		m = DefaultMapping()
	}
	cm, err := m.compile()
	if err != nil {
		return nil, fmt.Errorf("scim: %w", err)
	}
	s.mapping = cm
	if s.maxBody <= 0 {
		s.maxBody = defaultMaxBody
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.boolNames = cm.schemas.booleanNames()
	s.users, s.groups = cm.schemas.userView(), cm.schemas.groupView()
	s.args = &scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{
			SupportFiltering: true, SupportPatch: true, MaxResults: maxResults,
			AuthenticationSchemes: []scim.AuthenticationScheme{bearerScheme},
		},
		ResourceTypes: []scim.ResourceType{
			{
				ID: optional.NewString("User"), Name: "User", Endpoint: "/Users",
				Description: optional.NewString("A worker: an HR record in Roster"),
				Schema:      cm.schemas.user,
				SchemaExtensions: []scim.SchemaExtension{
					{Schema: cm.schemas.enterprise}, {Schema: cm.schemas.roster},
				},
				Handler: &userHandler{s},
			},
			{
				ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups",
				Description: optional.NewString("An HR group (team, cost centre); policies read it as worker.groups"),
				Schema:      cm.schemas.group,
				Handler:     &groupHandler{s},
			},
		},
	}
	if _, err := scim.NewServer(s.args); err != nil {
		return nil, fmt.Errorf("scim: %w", err)
	}
	return s, nil
}

var bearerScheme = scim.AuthenticationScheme{
	Type: scim.AuthenticationTypeOauthBearerToken, Name: "OAuth Bearer Token", Primary: true,
	Description: "A bearer token in the Authorization header, configured in roster.yaml.",
	SpecURI:     optional.NewString("https://www.rfc-editor.org/rfc/rfc6750"),
}

type tokenSum struct {
	actor string
	sum   [32]byte
}

// server is the SCIM handler: the request layer in front of the library
// (auth, limits, normalisation) and the state its resource handlers
// share.
type server struct {
	store     Store
	tokens    []tokenSum
	mapping   *compiledMapping
	users     *resSchema
	groups    *resSchema
	boolNames map[string]bool
	maxBody   int64
	onChange  func(id connectors.WorkerID, transition string)
	log       *slog.Logger
	now       func() time.Time
	args      *scim.ServerArgs
	// locks serialise read-modify-write sequences (PATCH, PUT, DELETE)
	// on one resource, so two concurrent PATCHes do not lose an update.
	locks [lockStripes]sync.Mutex
}

type actorKey struct{}

func actorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// lock locks the stripe of one resource and returns its unlock.
func (s *server) lock(kind, id string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(kind + "\x00" + id))
	mu := &s.locks[h.Sum32()%lockStripes]
	mu.Lock()
	return mu.Unlock
}

// authenticate compares the bearer token with every configured secret in
// constant time (SHA-256 sums, so lengths do not leak either) and
// returns the matching token's actor.
func (s *server) authenticate(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	actor := ""
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			actor = t.actor
		}
	}
	return actor, actor != ""
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	sw := &statusWriter{ResponseWriter: w}
	actor := s.serve(sw, r)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	level := slog.LevelDebug
	if status == http.StatusUnauthorized {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	s.log.Log(r.Context(), level, "scim request", "method", r.Method, "path", r.URL.Path, "status", status,
		"actor", actor, "remote", r.RemoteAddr, "duration", s.now().Sub(start))
}

// serve handles one request and returns the actor (for the log).
func (s *server) serve(w http.ResponseWriter, r *http.Request) string {
	rest, ok := strings.CutPrefix(r.URL.Path, BasePath)
	if !ok || (rest != "" && rest[0] != '/') {
		writeError(w, scimerrors.ScimError{Status: http.StatusNotFound, Detail: "SCIM lives under " + BasePath})
		return ""
	}
	actor, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="roster-scim"`)
		writeError(w, scimerrors.ScimError{Status: http.StatusUnauthorized, Detail: "missing or unknown bearer token"})
		return ""
	}
	if rest == "/ServiceProviderConfig" && r.Method == http.MethodGet {
		s.serviceProviderConfig(w, r)
		return actor
	}
	view := s.users
	if rest == "/Groups" || strings.HasPrefix(rest, "/Groups/") {
		view = s.groups
	}
	u := *r.URL
	u.Path, u.RawPath = "/v2"+rest, ""
	var body []byte
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if r.ContentLength > s.maxBody {
			writeError(w, s.tooLarge())
			return actor
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, s.tooLarge())
			} else {
				writeError(w, *invalidSyntax("could not read the request body"))
			}
			return actor
		}
		var serr *scimerrors.ScimError
		if r.Method == http.MethodPatch {
			body, serr = s.normalizePatch(raw, view)
		} else {
			body, serr = s.normalizeResource(raw, view)
		}
		if serr != nil {
			writeError(w, *serr)
			return actor
		}
	case http.MethodGet:
		if q := u.Query(); q.Has("filter") {
			q.Set("filter", normalizeFilter(q.Get("filter")))
			u.RawQuery = q.Encode()
		}
	}
	r2 := r.WithContext(context.WithValue(r.Context(), actorKey{}, actor))
	r2.URL = &u
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	srv, err := scim.NewServer(s.args, scim.WithBaseURL(baseURL(r)), scim.WithLogger(libLogger{s.log}))
	if err != nil { // cannot happen: NewSCIM built one with the same arguments
		s.log.Error("scim: build server", "err", err)
		writeError(w, scimerrors.ScimErrorInternal)
		return actor
	}
	if r.Method == http.MethodGet && (rest == "/Users" || rest == "/Groups") {
		lw := &listWriter{header: w.Header()}
		srv.ServeHTTP(lw, r2)
		lw.flush(w)
		return actor
	}
	srv.ServeHTTP(w, r2)
	return actor
}

func (s *server) tooLarge() scimerrors.ScimError {
	return scimerrors.ScimError{Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the request body is larger than %d bytes", s.maxBody)}
}

// baseURL is the SCIM base URL as the client reached it, for
// meta.location and the Location header.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: BasePath}
	return u.String()
}

func (s *server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	spc := map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/rosterhq/roster#scim",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": bearerScheme.Type, "name": bearerScheme.Name, "description": bearerScheme.Description,
			"specUri": bearerScheme.SpecURI.Value(), "primary": true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": baseURL(r) + "/ServiceProviderConfig"},
	}
	writeJSON(w, http.StatusOK, spc)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // plain maps and strings: cannot fail
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes a SCIM error response (RFC 7644 3.12).
func writeError(w http.ResponseWriter, e scimerrors.ScimError) {
	b, _ := e.MarshalJSON()
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// statusWriter records the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// listWriter buffers a list response so flush can set itemsPerPage to
// the number of resources on the page (the library reports the count
// asked for) and write an empty page as [] rather than null.
type listWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (w *listWriter) Header() http.Header { return w.header }

func (w *listWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *listWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}

func (w *listWriter) flush(dst http.ResponseWriter) {
	body := w.buf.Bytes()
	if w.status == http.StatusOK {
		var lr map[string]any
		if err := json.Unmarshal(body, &lr); err == nil {
			res, _ := lr["Resources"].([]any)
			if res == nil {
				res = []any{}
			}
			lr["Resources"], lr["itemsPerPage"] = res, len(res)
			if b, err := json.Marshal(lr); err == nil {
				body = b
			}
		}
	}
	dst.Header().Set("Content-Length", strconv.Itoa(len(body)))
	dst.WriteHeader(w.status)
	_, _ = dst.Write(body)
}

// libLogger passes the library's error logs to slog.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Error(args ...any) { l.log.Error("scim library", "detail", fmt.Sprint(args...)) }
