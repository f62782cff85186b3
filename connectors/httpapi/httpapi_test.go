package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// script answers the n-th request (from 0) with answers[n], and the last
// one for every request after that.
type script struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	bodies  []string
	times   []time.Time
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.times)
	s.times = append(s.times, time.Now())
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	s.answers[min(n, len(s.answers)-1)](w)
}

func status(code int, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "body")
	}
}

func TestTransportRetries(t *testing.T) {
	ok := status(200)
	tests := []struct {
		name     string
		method   string
		answers  []func(http.ResponseWriter)
		wantCode int
		wantHits int
	}{
		{"GET 503 then ok", "GET", []func(http.ResponseWriter){status(503), ok}, 200, 2},
		{"GET 429 Retry-After 0 then ok", "GET", []func(http.ResponseWriter){status(429, "Retry-After", "0"), ok}, 200, 2},
		{"POST 429 is retried with its body", "POST", []func(http.ResponseWriter){status(429, "Retry-After", "0"), ok}, 200, 2},
		{"POST 503 is not retried", "POST", []func(http.ResponseWriter){status(503), ok}, 503, 1},
		{"GitHub secondary limit: 403 with Retry-After", "GET", []func(http.ResponseWriter){status(403, "Retry-After", "0"), ok}, 200, 2},
		{"plain 403 is not retried", "GET", []func(http.ResponseWriter){status(403), ok}, 403, 1},
		{"404 is not retried", "GET", []func(http.ResponseWriter){status(404), ok}, 404, 1},
		{"gives up after MaxRetries", "GET", []func(http.ResponseWriter){status(502)}, 502, 3},
		{"a wait over MaxWait returns the 429", "GET", []func(http.ResponseWriter){status(429, "Retry-After", "3600"), ok}, 429, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{answers: tc.answers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			var waits []WaitEvent
			tr := &Transport{MaxRetries: 2, Backoff: time.Millisecond, MaxWait: time.Minute,
				OnWait: func(e WaitEvent) { waits = append(waits, e) }}
			req, _ := http.NewRequest(tc.method, srv.URL+"/x?token=secret", strings.NewReader("payload"))
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || len(s.times) != tc.wantHits {
				t.Fatalf("got status %d after %d requests, want %d after %d", resp.StatusCode, len(s.times), tc.wantCode, tc.wantHits)
			}
			if len(waits) != tc.wantHits-1 {
				t.Fatalf("OnWait called %d times, want %d", len(waits), tc.wantHits-1)
			}
			for i, b := range s.bodies {
				if tc.method == "POST" && b != "payload" {
					t.Fatalf("attempt %d sent body %q", i+1, b)
				}
			}
			for _, w := range waits {
				if w.Path != "/x" {
					t.Fatalf("wait event path %q, want /x (no query string)", w.Path)
				}
			}
		})
	}
}

func TestTransportHonoursRetryAfter(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){status(429, "Retry-After", "1"), status(200)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var ev WaitEvent
	tr := &Transport{OnWait: func(e WaitEvent) { ev = e }}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(s.times) != 2 {
		t.Fatalf("%d requests, want 2", len(s.times))
	}
	if gap := s.times[1].Sub(s.times[0]); gap < 950*time.Millisecond {
		t.Fatalf("retried after %v, want at least the 1s Retry-After", gap)
	}
	if !ev.FromServer || ev.Wait != time.Second || ev.Status != 429 {
		t.Fatalf("wait event %+v", ev)
	}
}

func TestTransportCapsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{MaxConcurrent: 3}}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Fatalf("peak requests in flight %d, want the cap 3", p)
	}
}

func TestTransportWaitEndsWithContext(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){status(429, "Retry-After", "30")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	_, err := (&http.Client{Transport: &Transport{}}).Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		hdr    map[string]string
		want   time.Duration
		wantOK bool
	}{
		{map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second, true},
		{map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1795953630"}, time.Unix(1795953630, 0).Sub(now) + time.Second, true},
		{map[string]string{"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "1795953630"}, 0, false},
		{map[string]string{"Retry-After": "soon"}, 0, false},
		{nil, 0, false},
	}
	for _, tc := range tests {
		h := http.Header{}
		for k, v := range tc.hdr {
			h.Set(k, v)
		}
		got, ok := RetryAfter(h, now)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("RetryAfter(%v) = %v, %v; want %v, %v", tc.hdr, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestError(t *testing.T) {
	tests := []struct {
		status int
		hdr    map[string]string
		want   connectors.ErrorKind
		after  time.Duration
	}{
		{429, map[string]string{"Retry-After": "3"}, connectors.RateLimited, 3 * time.Second},
		{403, map[string]string{"Retry-After": "5"}, connectors.RateLimited, 5 * time.Second},
		{403, nil, connectors.Permission, 0},
		{401, nil, connectors.Permission, 0},
		{404, nil, connectors.NotFound, 0},
		{409, nil, connectors.Conflict, 0},
		{422, nil, connectors.Invalid, 0},
		{502, nil, connectors.Transient, 0},
		{302, nil, connectors.Unknown, 0},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		for k, v := range tc.hdr {
			resp.Header.Set(k, v)
		}
		err := Error("add alice to team backend", resp, nil)
		if k := connectors.KindOf(err); k != tc.want {
			t.Errorf("status %d: kind %v, want %v", tc.status, k, tc.want)
		}
		if d := connectors.RetryAfter(err); d != tc.after {
			t.Errorf("status %d: RetryAfter %v, want %v", tc.status, d, tc.after)
		}
	}
	// A network error keeps the cause but not the URL with its query.
	_, nerr := http.Get("http://127.0.0.1:1/x?token=hunter2")
	err := Error("list members", nil, nerr)
	if connectors.KindOf(err) != connectors.Transient || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("network error: kind %v, text %q", connectors.KindOf(err), err)
	}
}

// A body read to its end frees the slot even if nobody closes it.
func TestTransportFreesSlotAtEOF(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message":"Not Found"}`)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{MaxConcurrent: 2}}
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("request %d: %v (a slot leaked)", i+1, err)
		}
		_, err = io.ReadAll(resp.Body)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// deliberately not closed
	}
}

// AttemptTimeout gives up a hung attempt and retries a GET; the caller's
// context is not what ends it.
func TestTransportAttemptTimeout(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-r.Context().Done() // hang until the client gives up
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{AttemptTimeout: 100 * time.Millisecond, Backoff: time.Millisecond}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" || n.Load() != 2 {
		t.Fatalf("got %q after %d attempts, want ok after 2", b, n.Load())
	}
}

// A 429 that names no wait is retried no sooner than RateLimitBackoff.
func TestTransportRateLimitBackoff(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){status(429), status(200)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	tr := &Transport{Backoff: time.Millisecond, RateLimitBackoff: 300 * time.Millisecond}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(s.times) != 2 || resp.StatusCode != 200 {
		t.Fatalf("%d requests, status %d", len(s.times), resp.StatusCode)
	}
	if gap := s.times[1].Sub(s.times[0]); gap < 290*time.Millisecond {
		t.Fatalf("retried after %v, want at least RateLimitBackoff", gap)
	}
}
