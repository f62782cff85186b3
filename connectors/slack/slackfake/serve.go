package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// route is what one request addresses.
type route struct {
	key  string // Calls.ByMethod key
	tier string // Calls.ByTier key
	web  *webMethod
	scim func(s *Server, w http.ResponseWriter, r *http.Request, id string)
	id   string // SCIM resource id
}

func (s *Server) route(r *http.Request) (route, bool) {
	p := r.URL.Path
	if name, ok := strings.CutPrefix(p, "/api/"); ok {
		m, ok := lookupWebMethod(name)
		if !ok {
			return route{key: "unknown"}, false
		}
		return route{key: name, tier: m.tier, web: &m}, true
	}
	if rest, ok := strings.CutPrefix(p, "/scim/v2/"); ok {
		return scimRoute(r.Method, rest)
	}
	return route{key: "unknown"}, false
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discardWriter is what a hung request's handler writes to.
type discardWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	at := s.now().UTC()
	rt, ok := s.route(r)
	s.mu.Lock()
	s.calls.Total++
	s.calls.ByMethod[rt.key]++
	if !ok {
		s.requests = append(s.requests, Request{At: at, Method: rt.key, Status: http.StatusNotFound})
		s.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/scim/") {
			scimError(w, http.StatusNotFound, "", "no such resource in the fake's SCIM API: "+r.Method+" "+r.URL.Path)
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "unknown_method"})
		return
	}
	s.calls.ByTier[rt.tier]++
	if rt.tier != "special" {
		s.calls.Limited++
	}
	fault := s.drawLocked()
	retryAfter := int(math.Ceil(s.faults.RetryAfter.Seconds()))
	switch fault {
	case "429":
		s.calls.Throttled++
		s.requests = append(s.requests, Request{At: at, Method: rt.key, Status: http.StatusTooManyRequests, Fault: fault})
	case "5xx":
		s.calls.Failed++
		s.requests = append(s.requests, Request{At: at, Method: rt.key, Status: http.StatusServiceUnavailable, Fault: fault})
	}
	s.mu.Unlock()

	switch fault {
	case "429":
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		if rt.web != nil {
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
		} else {
			scimError(w, http.StatusTooManyRequests, "", "rate_limited")
		}
		return
	case "5xx":
		if rt.web != nil {
			// Slack sends an HTML page with its 5xx answers.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprint(w, "<html><body>Service Unavailable (slackfake)</body></html>")
		} else {
			scimError(w, http.StatusServiceUnavailable, "", "service_unavailable")
		}
		return
	case "hang":
		// Carried out, then the answer is lost: hold the connection until
		// the client gives up (or the fake closes).
		dw := &discardWriter{h: http.Header{}}
		s.handle(rt, dw, r)
		s.mu.Lock()
		s.requests = append(s.requests, Request{At: at, Method: rt.key, Status: 0, Fault: fault})
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.quit:
		}
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	s.handle(rt, sw, r)
	s.mu.Lock()
	s.requests = append(s.requests, Request{At: at, Method: rt.key, Status: sw.status})
	s.mu.Unlock()
}

func (s *Server) handle(rt route, w http.ResponseWriter, r *http.Request) {
	if rt.web != nil {
		s.serveWeb(rt.key, *rt.web, w, r)
		return
	}
	rt.scim(s, w, r, rt.id)
}

// drawLocked decides the fault for one request: "", "429", "5xx", "hang".
func (s *Server) drawLocked() string {
	if s.first429 > 0 {
		s.first429--
		return "429"
	}
	f := s.faults
	if f.Rate429 <= 0 && f.Rate5xx <= 0 && f.RateHang <= 0 {
		return ""
	}
	x := s.rng.Float64()
	switch {
	case x < f.Rate429:
		return "429"
	case x < f.Rate429+f.Rate5xx:
		return "5xx"
	case x < f.Rate429+f.Rate5xx+f.RateHang:
		return "hang"
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "slackfake: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// bearer returns the token of an "Authorization: Bearer" header, and
// whether the header was present at all.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}
