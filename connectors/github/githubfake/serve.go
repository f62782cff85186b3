package githubfake

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// access is what a route needs from the credentials.
type access int

const (
	accessNone  access = iota // any valid token
	accessRead                // PAT read:org (or better); app members:read
	accessOwner               // PAT admin:org; app members:read (owner-only lists)
	accessWrite               // PAT admin:org; app members:write
	accessJWT                 // the app's JWT, not a token
)

const (
	docsSecondary = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	docsPrimary   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
)

// recorder buffers a handler's response so the fake can add an ETag, turn
// it into a 304, or lose it.
type recorder struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.hdr }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// serve is the fake's single entry point: counting, faults, auth, rate
// limit, then the route's handler, then ETag and 304.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	route := pattern
	if route == "" {
		route = r.Method + " (no route)"
	}
	s.mu.Lock()
	start := s.now().UTC()
	s.calls.Total++
	if s.calls.ByRoute == nil {
		s.calls.ByRoute = map[string]int{}
	}
	s.calls.ByRoute[route]++
	fault := s.drawLocked()
	logReq := func(status int, fault string) {
		s.requests = append(s.requests, Request{Time: start, Method: r.Method, Route: route, Path: r.URL.Path,
			Query: r.URL.RawQuery, Status: status, Fault: fault})
	}

	switch fault {
	case "hang":
		logReq(0, fault)
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		panic(http.ErrAbortHandler)
	case "429":
		s.calls.Throttled++
		s.countLocked()
		logReq(http.StatusTooManyRequests, fault)
		secs := int(math.Ceil(s.faults.RetryAfter.Seconds()))
		switch {
		case s.faults.RetryAfter < 0:
			secs = 0
		case secs <= 0:
			secs = 1
		}
		h := w.Header()
		s.rateHeadersLocked(h)
		s.mu.Unlock()
		h.Set("Retry-After", strconv.Itoa(secs))
		writeJSON(w, http.StatusTooManyRequests, apiError{Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", DocumentationURL: docsSecondary})
		return
	case "502":
		s.countLocked()
		logReq(http.StatusBadGateway, fault)
		h := w.Header()
		s.rateHeadersLocked(h)
		s.mu.Unlock()
		writeJSON(w, http.StatusBadGateway, apiError{Message: "Server Error"})
		return
	}
	defer s.mu.Unlock()

	rec := &recorder{hdr: http.Header{}}
	s.handleLocked(rec, r, route)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case r.Method == http.MethodGet && status == http.StatusOK:
		sum := sha256.Sum256(rec.body.Bytes())
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		rec.hdr.Set("ETag", etag)
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			status = http.StatusNotModified
			rec.body.Reset()
			s.calls.NotModified++
		} else {
			s.countLocked()
		}
	case status == http.StatusUnauthorized:
		// GitHub does not charge a request that fails authentication to
		// the token's budget.
	default:
		s.countLocked()
	}
	if fault == "lost" {
		logReq(http.StatusBadGateway, fault)
		s.rateHeadersLocked(w.Header())
		writeJSON(w, http.StatusBadGateway, apiError{Message: "Server Error"})
		return
	}
	logReq(status, "")
	h := w.Header()
	for k, v := range rec.hdr {
		h[k] = v
	}
	s.rateHeadersLocked(h)
	if status == http.StatusNoContent || status == http.StatusNotModified {
		h.Del("Content-Type")
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(rec.body.Bytes())
}

// handleLocked authenticates, applies the primary limit and runs the route.
func (s *Server) handleLocked(w *recorder, r *http.Request, route string) {
	need, known := s.access[route]
	if !known {
		// An unknown path is 404; a known path with the wrong method 405.
		s.mux.ServeHTTP(w, r)
		if w.status == 0 || w.status == http.StatusNotFound {
			w.hdr = http.Header{}
			w.status = 0
			w.body.Reset()
			writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest"})
		}
		return
	}
	if need == accessJWT {
		s.mux.ServeHTTP(w, r)
		return
	}
	pat, ok := s.authLocked(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, apiError{Message: "Bad credentials", DocumentationURL: "https://docs.github.com/rest"})
		return
	}
	if pat {
		w.hdr.Set("X-OAuth-Scopes", strings.Join(s.opts.Scopes, ", "))
		accepted := ""
		switch need {
		case accessRead:
			accepted = "admin:org, read:org, write:org"
		case accessOwner, accessWrite:
			accepted = "admin:org"
		}
		w.hdr.Set("X-Accepted-OAuth-Scopes", accepted)
	}
	if !s.allowedLocked(pat, need) {
		msg := "Resource not accessible by integration"
		if pat {
			msg = "Resource not accessible by personal access token"
		}
		writeJSON(w, http.StatusForbidden, apiError{Message: msg, DocumentationURL: "https://docs.github.com/rest/orgs/members"})
		return
	}
	now := s.now()
	if s.rateWindow.IsZero() || !now.Before(s.rateWindow.Add(s.opts.RateWindow)) {
		s.rateWindow, s.rateUsed = now, 0
	}
	if s.rateUsed >= s.opts.RateLimit {
		writeJSON(w, http.StatusForbidden, apiError{Message: "API rate limit exceeded for installation.", DocumentationURL: docsPrimary})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) countLocked() {
	s.calls.RateLimited++
	s.rateUsed++
}

func (s *Server) rateHeadersLocked(h http.Header) {
	now := s.now()
	if s.rateWindow.IsZero() || !now.Before(s.rateWindow.Add(s.opts.RateWindow)) {
		s.rateWindow, s.rateUsed = now, 0
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.opts.RateLimit-s.rateUsed, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.rateUsed))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.rateReset(), 10))
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
}

// drawLocked picks this request's fault, if any.
func (s *Server) drawLocked() string {
	if s.faults.Burst429 > 0 {
		s.faults.Burst429--
		return "429"
	}
	f := s.faults
	if f.Rate429+f.Rate5xx+f.RateLost+f.RateHang <= 0 {
		return ""
	}
	x := s.rng.Float64()
	for _, c := range []struct {
		p    float64
		name string
	}{{f.Rate429, "429"}, {f.Rate5xx, "502"}, {f.RateLost, "lost"}, {f.RateHang, "hang"}} {
		if x < c.p {
			return c.name
		}
		x -= c.p
	}
	return ""
}

// authLocked checks the Authorization header: pat reports whether the
// personal access token was used (else an installation token).
func (s *Server) authLocked(r *http.Request) (pat, ok bool) {
	h := r.Header.Get("Authorization")
	var tok string
	switch {
	case strings.HasPrefix(h, "Bearer "):
		tok = strings.TrimPrefix(h, "Bearer ")
	case strings.HasPrefix(h, "token "):
		tok = strings.TrimPrefix(h, "token ")
	default:
		return false, false
	}
	if tok == s.token {
		return true, true
	}
	if exp, found := s.appTokens[tok]; found && s.now().Before(exp) {
		return false, true
	}
	return false, false
}

func (s *Server) allowedLocked(pat bool, need access) bool {
	if need == accessNone {
		return true
	}
	if pat {
		has := func(sc string) bool {
			for _, x := range s.opts.Scopes {
				if x == sc {
					return true
				}
			}
			return false
		}
		if need == accessRead {
			return has("admin:org") || has("write:org") || has("read:org")
		}
		return has("admin:org")
	}
	perm := ""
	if s.opts.App != nil {
		perm = s.opts.App.Members
	}
	if need == accessWrite {
		return perm == "write"
	}
	return perm == "read" || perm == "write"
}

func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// apiError is GitHub's error body.
type apiError struct {
	Message          string       `json:"message"`
	DocumentationURL string       `json:"documentation_url,omitempty"`
	Errors           []fieldError `json:"errors,omitempty"`
	Status           string       `json:"status,omitempty"`
}

type fieldError struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"fake: encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func invalid(w http.ResponseWriter, msg string, errs ...fieldError) {
	writeJSON(w, http.StatusUnprocessableEntity, apiError{Message: msg, DocumentationURL: "https://docs.github.com/rest", Errors: errs, Status: "422"})
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, apiError{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest", Status: "404"})
}

// verifyJWT checks an app JWT: RS256 over the app's key, issuer the app
// id, issued no later than a minute ahead, expiring within ten minutes of
// issue and not yet expired.
func (s *Server) verifyJWT(r *http.Request) error {
	app := s.opts.App
	if app == nil || app.PublicKey == nil {
		return fmt.Errorf("no GitHub App is installed")
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return fmt.Errorf("a JSON web token is required (Authorization: Bearer)")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fmt.Errorf("'Authorization' header is malformed")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("'Authorization' header is malformed")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Alg != "RS256" {
		return fmt.Errorf("the JWT must be signed with RS256")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(app.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("a JSON web token could not be decoded")
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	if err := json.Unmarshal(cb, &claims); err != nil {
		return fmt.Errorf("a JSON web token could not be decoded")
	}
	iss := strings.Trim(string(claims.Iss), `"`)
	if iss != itoa(app.ID) {
		return fmt.Errorf("'Issuer' claim ('iss') must be an Integer")
	}
	now := s.now().Unix()
	switch {
	case claims.Iat > now+60:
		return fmt.Errorf("'Issued at' claim ('iat') must be an Integer representing a time in the past")
	case claims.Exp <= now:
		return fmt.Errorf("'Expiration time' claim ('exp') is too far in the past")
	case claims.Exp-claims.Iat > 600:
		return fmt.Errorf("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

func (s *Server) issueToken() (string, time.Time) {
	ttl := s.opts.App.TokenTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	s.nextID++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d %d %s", s.nextID, s.now().UnixNano(), s.token)))
	tok := "ghs_" + hex.EncodeToString(sum[:])[:36]
	exp := s.now().Add(ttl).UTC().Truncate(time.Second)
	s.appTokens[tok] = exp
	return tok, exp
}
