package github

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/httpapi"
)

// The HTTP stack under go-github, outermost first:
//
//	etagCache     conditional GETs: If-None-Match, a 304 answered from memory
//	authTransport Authorization: the PAT or the app installation's token
//	httpapi.Transport  concurrency cap, retries of 429s (and 5xx on GET),
//	                   each attempt bounded by the settings timeout
//	http.Transport

// etagCache makes every GET conditional: it remembers the ETag and body of
// each 200 by URL and sends If-None-Match; a 304 (which GitHub does not
// count against the rate limit) is turned back into the remembered 200,
// with the 304's rate-limit headers. It holds at most maxEntries URLs and
// starts afresh when full.
type etagCache struct {
	next       http.RoundTripper
	maxEntries int

	mu      sync.Mutex
	entries map[string]*cacheEntry
	hits    int
}

type cacheEntry struct {
	etag   string
	header http.Header
	body   []byte
}

// maxCachedBody is the largest body read; a page of 100 users is ~130 KB.
const maxCachedBody = 16 << 20

func (c *etagCache) RoundTrip(req *http.Request) (*http.Response, error) {
	var e *cacheEntry
	key := req.URL.String()
	if req.Method == http.MethodGet && req.Header.Get("If-None-Match") == "" {
		c.mu.Lock()
		e = c.entries[key]
		c.mu.Unlock()
		if e != nil {
			req = req.Clone(req.Context())
			req.Header.Set("If-None-Match", e.etag)
		}
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// Every body is read here and closed at once: go-github replaces the
	// body of an error response without closing the original, which would
	// keep httpapi.Transport's slot taken.
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCachedBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(b) > maxCachedBody {
		return nil, fmt.Errorf("response larger than %d bytes", maxCachedBody)
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && e != nil:
		h := e.header.Clone()
		for k, v := range resp.Header {
			if strings.HasPrefix(k, "X-Ratelimit-") || k == "Date" {
				h[k] = v
			}
		}
		c.mu.Lock()
		c.hits++
		c.mu.Unlock()
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: h, Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body)), Request: resp.Request,
		}, nil
	case req.Method == http.MethodGet && resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "":
		c.mu.Lock()
		if c.entries == nil || len(c.entries) >= c.maxEntries {
			c.entries = map[string]*cacheEntry{}
		}
		c.entries[key] = &cacheEntry{etag: resp.Header.Get("ETag"), header: resp.Header.Clone(), body: b}
		c.mu.Unlock()
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// authTransport sets the Authorization header from token.
type authTransport struct {
	next  http.RoundTripper
	token func(ctx context.Context) (string, error)
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	return t.next.RoundTrip(req)
}

// appTokens issues and caches a GitHub App installation's access token,
// refreshing it refreshBefore its expiry.
type appTokens struct {
	appID, installationID int64
	key                   *rsa.PrivateKey
	url                   string // POST …/app/installations/{id}/access_tokens
	hc                    *http.Client
	now                   func() time.Time

	mu          sync.Mutex
	tok         string
	exp         time.Time
	permissions map[string]string
}

// refreshBefore is how long before expires_at an installation token is
// replaced (tokens live an hour).
const refreshBefore = 5 * time.Minute

func (a *appTokens) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok != "" && a.now().Before(a.exp.Add(-refreshBefore)) {
		return a.tok, nil
	}
	const op = "github: app installation token"
	jwt, err := a.jwt()
	if err != nil {
		return "", connectors.Errorf(connectors.Invalid, op, "sign the app JWT: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", httpapi.Error(op, nil, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", httpapi.Error(op, nil, err)
	}
	if resp.StatusCode != http.StatusCreated {
		var ge struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &ge)
		msg := fmt.Sprintf("installation %d of app %d: %s", a.installationID, a.appID, ge.Message)
		return "", httpapi.Error(op, resp, errors.New(msg))
	}
	var out struct {
		Token       string            `json:"token"`
		ExpiresAt   time.Time         `json:"expires_at"`
		Permissions map[string]string `json:"permissions"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return "", connectors.Errorf(connectors.Transient, op, "unreadable answer from GitHub")
	}
	a.tok, a.exp, a.permissions = out.Token, out.ExpiresAt, out.Permissions
	return a.tok, nil
}

// grantedPermissions returns the permissions of the current token.
func (a *appTokens) grantedPermissions() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.permissions
}

// jwt signs the app's JSON web token (RS256): issued a minute ago to allow
// for clock drift, valid nine minutes (GitHub's limit is ten).
func (a *appTokens) jwt() (string, error) {
	now := a.now().Unix()
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, err := json.Marshal(map[string]int64{"iat": now - 60, "exp": now + 9*60, "iss": a.appID})
	if err != nil {
		return "", err
	}
	signing := hdr + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// parsePrivateKey reads a PEM RSA key, PKCS #1 or PKCS #8. Its errors
// never quote the key.
func parsePrivateKey(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA private key in PKCS #1 or PKCS #8 form")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is a %T, GitHub Apps use RSA", k)
	}
	return rk, nil
}

// classify turns a go-github error into a *connectors.Error named op.
// A cancelled context comes back wrapped, unclassified, as the caller's own
// doing.
// secondaryLimitWait is how long to wait after a secondary rate limit
// that names no wait, and invitationCapWait after GitHub's cap on
// invitations per day ("Over invitation rate limit").
const (
	secondaryLimitWait = time.Minute
	invitationCapWait  = time.Hour
)

func classify(op string, resp *gh.Response, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return &connectors.Error{Kind: ce.Kind, Op: op, Err: err, RetryAfter: ce.RetryAfter}
	}
	var rle *gh.RateLimitError
	if errors.As(err, &rle) {
		wait := max(time.Until(rle.Rate.Reset.Time), 0) + time.Second
		return &connectors.Error{Kind: connectors.RateLimited, Op: op, RetryAfter: wait,
			Err: fmt.Errorf("primary rate limit of %d requests exhausted until %s", rle.Rate.Limit, rle.Rate.Reset.UTC().Format(time.RFC3339))}
	}
	var are *gh.AbuseRateLimitError
	if errors.As(err, &are) {
		// GitHub: without retry-after, "wait for at least one minute
		// before retrying"; hammering a secondary limit can get the
		// integration banned.
		e := &connectors.Error{Kind: connectors.RateLimited, Op: op, Err: errors.New("secondary rate limit: " + are.Message),
			RetryAfter: secondaryLimitWait}
		if are.RetryAfter != nil && *are.RetryAfter > 0 {
			e.RetryAfter = *are.RetryAfter
		}
		return e
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return httpapi.Error(op, er.Response, errors.New(ghMessage(er)))
	}
	if resp != nil && resp.Response != nil {
		return httpapi.Error(op, resp.Response, err)
	}
	return httpapi.Error(op, nil, err)
}

// ghMessage is GitHub's own explanation of a failure, without the URL.
func ghMessage(er *gh.ErrorResponse) string {
	parts := []string{er.Message}
	for _, e := range er.Errors {
		switch {
		case e.Message != "":
			parts = append(parts, e.Message)
		case e.Field != "":
			parts = append(parts, e.Code+" "+e.Field)
		}
	}
	return strings.Join(parts, ": ")
}

// status returns the HTTP status of a go-github error, or 0.
func status(err error) int {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}
