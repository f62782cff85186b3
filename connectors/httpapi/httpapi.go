// Package httpapi is the HTTP plumbing the SaaS connectors share: a
// RoundTripper that caps the requests in flight and waits out rate limits
// and transient failures the way the apps ask, and the mapping from HTTP
// statuses to the connector error kinds the executor acts on.
//
// Transport retries a request only when doing it again cannot do harm: a
// 429 (the app did not process it) for any method, and a 5xx or a network
// error for GET and HEAD. Everything else is returned to the connector,
// which classifies it with Error so the executor retries Apply later with
// backoff. A wait longer than MaxWait is not waited: the 429 is returned
// with its Retry-After for the executor to schedule.
//
// Nothing here logs or returns a request's headers, query string or body,
// so tokens cannot leak through errors.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// WaitEvent describes one wait before a retry, for logs and metrics.
type WaitEvent struct {
	Method string
	// Path is the request's URL path, without the query string.
	Path string
	// Status is the status that caused the wait, 0 for a network error.
	Status int
	// Wait is how long the transport waits before the next attempt.
	Wait time.Duration
	// Attempt counts the attempts made so far (1 after the first).
	Attempt int
	// FromServer is true when the app named the wait (Retry-After or a
	// rate-limit reset), false for the transport's own backoff.
	FromServer bool
}

// Transport is an http.RoundTripper for a connector's API client. The zero
// value is usable; its fields must not change once it is in use.
type Transport struct {
	// Base performs the requests; nil means a clone of
	// http.DefaultTransport.
	Base http.RoundTripper
	// MaxConcurrent caps the requests in flight (0: 8). Waiting for a
	// slot ends with the request's context.
	MaxConcurrent int
	// MaxRetries is how many times one request is retried (0: 4; a
	// negative value: never).
	MaxRetries int
	// MaxWait is the longest single wait honoured (0: 60s); a longer
	// Retry-After returns the response as it is.
	MaxWait time.Duration
	// Backoff is the first wait when the app names none (0: 250ms); it
	// doubles with every attempt and is jittered by ±25%.
	Backoff time.Duration
	// RateLimitBackoff, when set, is the least wait after a rate-limited
	// answer that names no wait (GitHub asks for a minute).
	RateLimitBackoff time.Duration
	// OnWait, when set, is called before every wait.
	OnWait func(WaitEvent)
	// AttemptTimeout, when set, bounds each attempt (until its answer's
	// body is read or closed), so a hung answer is given up and, for a
	// GET, retried; the waits between attempts are not counted.
	AttemptTimeout time.Duration

	once  sync.Once
	slots chan struct{}
	base  http.RoundTripper
}

func (t *Transport) init() {
	n := t.MaxConcurrent
	if n <= 0 {
		n = 8
	}
	t.slots = make(chan struct{}, n)
	t.base = t.Base
	if t.base == nil {
		t.base = http.DefaultTransport.(*http.Transport).Clone()
	}
}

func (t *Transport) maxRetries() int {
	switch {
	case t.MaxRetries < 0:
		return 0
	case t.MaxRetries == 0:
		return 4
	}
	return t.MaxRetries
}

func (t *Transport) maxWait() time.Duration {
	if t.MaxWait <= 0 {
		return 60 * time.Second
	}
	return t.MaxWait
}

func (t *Transport) backoff(attempt int) time.Duration {
	b := t.Backoff
	if b <= 0 {
		b = 250 * time.Millisecond
	}
	for i := 1; i < attempt && b < time.Minute; i++ {
		b *= 2
	}
	return time.Duration(float64(b) * (0.75 + rand.Float64()/2))
}

// RoundTrip sends req, retrying as the package doc describes.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.once.Do(t.init)
	ctx := req.Context()
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, fmt.Errorf("%s %s: cannot retry a request whose body cannot be replayed", req.Method, req.URL.Path)
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("%s %s: replay body: %w", req.Method, req.URL.Path, err)
			}
			req = req.Clone(ctx)
			req.Body = body
		}
		resp, err := t.send(ctx, req)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		limited := resp != nil && IsRateLimited(resp)
		retry := (limited || idempotent && (err != nil || status >= 500)) && ctx.Err() == nil
		if !retry || attempt > t.maxRetries() {
			return resp, err
		}
		wait, fromServer := time.Duration(0), false
		if resp != nil {
			wait, fromServer = RetryAfter(resp.Header, time.Now())
		}
		if !fromServer {
			wait = t.backoff(attempt)
			if limited {
				wait = max(wait, t.RateLimitBackoff)
			}
		}
		if wait > t.maxWait() {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
		if t.OnWait != nil {
			t.OnWait(WaitEvent{Method: req.Method, Path: req.URL.Path, Status: status, Wait: wait, Attempt: attempt, FromServer: fromServer})
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

func (t *Transport) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cancel := context.CancelFunc(func() {})
	if t.AttemptTimeout > 0 {
		var actx context.Context
		actx, cancel = context.WithTimeout(ctx, t.AttemptTimeout)
		req = req.WithContext(actx)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		cancel()
		<-t.slots
		return resp, err
	}
	// The slot is held until the body is read to its end or closed: a
	// response being read is a request in flight. (Some clients, go-github
	// among them, read an error body to the end and never close it.)
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { cancel(); <-t.slots }}
	return resp, nil
}

type releaseBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// IsRateLimited reports whether resp says "too many requests": a 429, or a
// 403 that carries Retry-After or an exhausted X-RateLimit-Remaining (how
// GitHub answers its primary and secondary limits).
func IsRateLimited(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		return resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0"
	}
	return false
}

// RetryAfter returns how long h asks the client to wait: Retry-After in
// seconds or as an HTTP date, or else the time until X-RateLimit-Reset
// (Unix seconds) when X-RateLimit-Remaining is 0. ok is false when h names
// no wait.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(at.Sub(now), 0), true
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now), 0) + time.Second, true
		}
	}
	return 0, false
}

// KindForStatus maps an HTTP status to the connector error kind: 429 is
// RateLimited, 5xx and 408 Transient, 404 and 410 NotFound, 401 and 403
// Permission, 409 Conflict, 400 and 422 Invalid, anything else Unknown
// (which the executor retries).
func KindForStatus(status int) connectors.ErrorKind {
	switch {
	case status == http.StatusTooManyRequests:
		return connectors.RateLimited
	case status >= 500, status == http.StatusRequestTimeout:
		return connectors.Transient
	case status == http.StatusNotFound, status == http.StatusGone:
		return connectors.NotFound
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return connectors.Permission
	case status == http.StatusConflict:
		return connectors.Conflict
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return connectors.Invalid
	}
	return connectors.Unknown
}

// Error classifies a failed call as a *connectors.Error. resp may be nil
// (a network error: Transient, or the context's error as is); err may be
// nil when resp carries the failure. A rate-limited response gets its
// RetryAfter. The message names op and the status, never the URL's query
// or any header.
func Error(op string, resp *http.Response, err error) error {
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &connectors.Error{Kind: connectors.Transient, Op: op, Err: err}
		}
		return &connectors.Error{Kind: connectors.Transient, Op: op, Err: stripURL(err)}
	}
	kind := KindForStatus(resp.StatusCode)
	if IsRateLimited(resp) {
		kind = connectors.RateLimited
	}
	e := &connectors.Error{Kind: kind, Op: op}
	if kind == connectors.RateLimited {
		e.RetryAfter, _ = RetryAfter(resp.Header, time.Now())
	}
	if err != nil {
		e.Err = fmt.Errorf("HTTP %d: %w", resp.StatusCode, stripURL(err))
	} else {
		e.Err = fmt.Errorf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return e
}

// stripURL drops the URL (and so any query string) from a *url.Error,
// keeping the operation and the cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request: %w", ue.Op, ue.Err)
	}
	return err
}
