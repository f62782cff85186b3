package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/lifecycle"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader running
// at the same time.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningLine = regexp.MustCompile(`^roster serve: listening on (https?://[^ ]+) \(SCIM base URL (https?://[^ ]+)\)$`)

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scimClient sends requests to one server.
type scimClient struct {
	t     testing.TB
	hc    *http.Client
	base  string // http://host:port
	token string
}

// do sends a request with a JSON body (nil for none) and returns the
// status and body. token "" sends no Authorization header.
func (c *scimClient) do(method, path, token string, body any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (c *scimClient) get(path string) (int, string) {
	c.t.Helper()
	return c.do(http.MethodGet, path, "", nil)
}

// metric returns the value of one sample line of /metrics ("name{labels}"
// exactly as exposed), or -1 when it is absent.
func (c *scimClient) metric(sample string) float64 {
	c.t.Helper()
	code, body := c.get("/metrics")
	if code != http.StatusOK {
		c.t.Fatalf("/metrics: %d\n%s", code, body)
	}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				c.t.Fatalf("metric %s: %q", sample, line)
			}
			return v
		}
	}
	return -1
}

// newJoiner is a SCIM User for an engineer on the backend squad, as an HR
// system would POST it.
func newJoiner(userName string) map[string]any {
	return map[string]any{
		"schemas": []string{
			"urn:ietf:params:scim:schemas:core:2.0:User",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
			"urn:ietf:params:scim:schemas:extension:roster:2.0:User",
		},
		"userName":    userName,
		"externalId":  "hr-" + userName,
		"active":      true,
		"displayName": "Bertram Gilfoyle II",
		"title":       "Backend Engineer",
		"name":        map[string]any{"givenName": "Bertram", "familyName": "Gilfoyle"},
		"emails":      []any{map[string]any{"type": "work", "value": userName + "@piedpiper.com", "primary": true}},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
			"employeeNumber": "E9001",
			"division":       "Engineering",
			"department":     "Engineering",
			"organization":   "Pied Piper Inc.",
			"costCenter":     "CC-300",
		},
		"urn:ietf:params:scim:schemas:extension:roster:2.0:User": map[string]any{
			"workerType": "employee",
			"team":       "backend",
			"location":   "Palo Alto",
		},
	}
}

// isSCIMError reports whether body is a SCIM error with the given status.
func isSCIMError(body string, status int) bool {
	var e struct {
		Schemas []string `json:"schemas"`
		Status  string   `json:"status"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return false
	}
	return len(e.Schemas) == 1 && e.Schemas[0] == "urn:ietf:params:scim:api:messages:2.0:Error" && e.Status == strconv.Itoa(status)
}

// TestServeContract runs the built binary exactly as the contract
// says — from the repository root, with the sample config, the token in
// ROSTER_SCIM_TOKEN — creates a joiner over SCIM, waits for the engine to
// carry it out, stops the server with SIGTERM and checks what it left.
func TestServeContract(t *testing.T) {
	t.Parallel()
	bin := rosterBinary(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	t.Cleanup(func() { checkDB(t, filepath.Join(data, "roster.db")) })
	const token = "test-token-0123456789abcdef0123456789abcdef"

	cmd := exec.Command(bin, "--config", "testdata/piedpiper/roster.yaml", "--data-dir", data, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "ROSTER_SCIM_TOKEN="+token)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var out lockedBuffer
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	})

	var base, scimBaseURL string
	select {
	case l := <-lines:
		m := listeningLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("first line %q does not say where serve listens", l)
		}
		base, scimBaseURL = m[1], m[2]
	case err := <-exited:
		stopped = true
		t.Fatalf("serve exited before listening: %v\n%s", err, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not print its address\nstderr:\n%s", stderr.String())
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") || scimBaseURL != base+"/scim/v2" {
		t.Fatalf("base %q, SCIM base %q", base, scimBaseURL)
	}
	c := &scimClient{t: t, hc: &http.Client{Timeout: 10 * time.Second}, base: base, token: token}

	if code, body := c.get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	waitFor(t, 15*time.Second, "/readyz to answer 200", func() bool {
		code, body := c.get("/readyz")
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz: %d %q", code, body)
		}
		return code == http.StatusOK
	})

	// No token, a wrong token: 401 with a SCIM error body, nothing stored.
	for _, tok := range []string{"", "wrong-" + token} {
		code, body := c.do(http.MethodPost, "/scim/v2/Users", tok, newJoiner("intruder"))
		if code != http.StatusUnauthorized || !isSCIMError(body, http.StatusUnauthorized) {
			t.Errorf("POST with token %q: %d %s", tok, code, body)
		}
	}

	code, body := c.do(http.MethodPost, "/scim/v2/Users", token, newJoiner("gilfoyle2"))
	if code != http.StatusCreated {
		t.Fatalf("POST /Users: %d\n%s\nstderr:\n%s", code, body, stderr.String())
	}
	var created struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.ID == "" || created.UserName != "gilfoyle2" {
		t.Fatalf("created user: %v %s", err, body)
	}
	if code, body := c.do(http.MethodGet, "/scim/v2/Users/"+created.ID, token, nil); code != http.StatusOK || !strings.Contains(body, `"gilfoyle2"`) {
		t.Errorf("GET the new user: %d %s", code, body)
	}
	// The filter Entra ID's connection test sends finds nobody.
	if code, body := c.do(http.MethodGet, `/scim/v2/Users?filter=userName+eq+%22a9a4ff35-0d0c-4a38-9a4f-2b1c0e4b0f7d%22`, token, nil); code != http.StatusOK || !strings.Contains(body, `"totalResults":0`) {
		t.Errorf("connection-test lookup: %d %s", code, body)
	}

	// The SCIM response does not wait for the apps; the joiner is carried
	// out shortly after, and the histogram records it.
	waitFor(t, 15*time.Second, "the joiner to be done in every app", func() bool {
		return c.metric(`roster_hr_change_to_done_seconds_count{kind="joiner"}`) >= 1
	})
	if v := c.metric(`roster_scim_requests_total{code="201",method="POST"}`); v != 1 {
		t.Errorf("roster_scim_requests_total POST 201 = %v, want 1", v)
	}
	if v := c.metric(`roster_scim_requests_total{code="401",method="POST"}`); v != 2 {
		t.Errorf("roster_scim_requests_total POST 401 = %v, want 2", v)
	}
	if v := c.metric(`roster_workers{status="active"}`); v != 1 {
		t.Errorf("roster_workers active = %v, want 1", v)
	}
	waitFor(t, 10*time.Second, "an empty outbox", func() bool { return c.metric("roster_outbox_depth") == 0 })
	if v := c.metric("roster_ready"); v != 1 {
		t.Errorf("roster_ready = %v", v)
	}

	// SIGTERM: a graceful stop, exit 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop within 15s of SIGTERM\nstderr:\n%s", stderr.String())
	}

	logs := stderr.String()
	if strings.Contains(logs, token) || strings.Contains(out.String(), token) {
		t.Errorf("the token appears in the output:\n%s", logs)
	}
	for _, want := range []string{
		`msg="http request" method=POST path=/scim/v2/Users status=201`,
		`msg="http request" method=POST path=/scim/v2/Users status=401`,
		`msg=stopped`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, logs)
		}
	}

	// What it left: apps that match the policy, a valid audit chain with
	// the token's name as the actor of the HR change.
	cfg := filepath.Join(root, "testdata", "piedpiper", "roster.yaml")
	cli := func(want int, args ...string) result {
		t.Helper()
		r := runCLI(t, append([]string{"--config", cfg, "--data-dir", data}, args...)...)
		if r.code != want {
			t.Fatalf("roster %s: want exit %d, got %s", strings.Join(args, " "), want, r)
		}
		return r
	}
	cli(0, "plan", "--detailed-exitcode")
	cli(0, "audit", "verify")
	r := cli(0, "audit", "log", "--worker", created.ID, "-o", "json")
	var hrActor string
	outcomes := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if strings.HasPrefix(rec.Type, "hr.") && hrActor == "" {
			hrActor = rec.Actor
		}
		if rec.Type == "action.outcome" && rec.Outcome == "ok" {
			outcomes++
		}
	}
	if hrActor != "hr" && hrActor != "scim:hr" {
		t.Errorf("actor of the HR change is %q, want the token's name hr", hrActor)
	}
	if outcomes == 0 {
		t.Errorf("no action carried out for the joiner:\n%s", r.stdout)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "roster test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

// TestServeTLSInProcess runs serve in-process over HTTPS with a token from
// a file, then cancels its context as SIGINT would.
func TestServeTLSInProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := selfSigned(t, e.dir)
	const token = "file-token-abcdefghijklmnopqrstuvwxyz012345"
	if err := os.WriteFile(filepath.Join(e.dir, "scim-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	editFile(t, e.config, "env:ROSTER_SCIM_TOKEN", "file:scim-token")
	editFile(t, e.config, "server:\n", "server:\n  tls: {cert_file: cert.pem, key_file: key.pem}\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--config", e.config, "--data-dir", e.data, "serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, strings.NewReader(""), &stdout, &stderr)
	}()
	var base string
	waitFor(t, 10*time.Second, "the listening line", func() bool {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d\n%s", code, stderr.String())
		default:
		}
		m := listeningLine.FindStringSubmatch(strings.TrimSpace(stdout.String()))
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("base %q, want https", base)
	}
	c := &scimClient{t: t, base: base, token: token, hc: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}}
	if code, body := c.get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz over TLS: %d %q", code, body)
	}
	if code, body := c.do(http.MethodGet, "/scim/v2/ServiceProviderConfig", token, nil); code != http.StatusOK || !strings.Contains(body, "oauthbearertoken") {
		t.Errorf("ServiceProviderConfig: %d %s", code, body)
	}
	if code, body := c.do(http.MethodGet, "/scim/v2/Users", "not-"+token, nil); code != http.StatusUnauthorized || !isSCIMError(body, http.StatusUnauthorized) {
		t.Errorf("wrong token: %d %s", code, body)
	}
	if v := c.metric(`roster_scim_requests_total{code="401",method="GET"}`); v != 1 {
		t.Errorf("401 counter = %v", v)
	}
	// Plain HTTP to the TLS port is refused.
	if resp, err := http.Get(strings.Replace(base, "https://", "http://", 1) + "/healthz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered 200 on the TLS port")
		}
		resp.Body.Close()
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d after cancel\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of cancel")
	}
	logs := stderr.String()
	if strings.Contains(logs, token) {
		t.Errorf("token in logs:\n%s", logs)
	}
	// JSON logs: one object per line, with the request fields.
	sawRequest := false
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "http request" && rec["path"] == "/scim/v2/Users" {
			sawRequest = rec["status"] == float64(401) && rec["method"] == "GET" && rec["duration_ms"] != nil
		}
	}
	if !sawRequest {
		t.Errorf("no JSON request log for GET /scim/v2/Users 401:\n%s", logs)
	}
	e.must(0, "audit", "verify")
}

// TestServeStartupErrors: problems found at start stop serve with exit 1
// and a message that points at the cause, before it listens.
func TestServeStartupErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	unset := fmt.Sprintf("ROSTER_TEST_UNSET_%d", os.Getpid())
	os.Unsetenv(unset)

	tests := []struct {
		name  string
		edit  func(e *env)
		args  []string
		wants []string
	}{
		{
			name:  "token variable unset",
			edit:  func(e *env) { editFile(t, e.config, "env:ROSTER_SCIM_TOKEN", "env:"+unset) },
			wants: []string{"roster.yaml:", `scim token "hr"`, "environment variable " + unset + " is not set"},
		},
		{
			name:  "token file missing",
			edit:  func(e *env) { editFile(t, e.config, "env:ROSTER_SCIM_TOKEN", "file:no-such-token") },
			wants: []string{`scim token "hr"`, "no-such-token", "no such file"},
		},
		{
			name: "bad mapping override",
			edit: func(e *env) {
				editFile(t, e.config, `team: "urn:ietf:params:scim:schemas:extension:roster:2.0:User:team"`, `team: "nosuch[attr"`)
			},
			wants: []string{"roster.yaml:", "scim.mapping.team"},
		},
		{
			name: "tls files missing",
			edit: func(e *env) {
				editFile(t, e.config, "server:\n", "server:\n  tls: {cert_file: nope.pem, key_file: nope.key}\n")
			},
			wants: []string{"server.tls", "nope.pem"},
		},
		{
			name:  "bad --listen",
			args:  []string{"--listen", "localhost"},
			wants: []string{"--listen", `"localhost" must be HOST:PORT`},
		},
		{
			name:  "address in use",
			args:  []string{"--listen", busy.Addr().String()},
			wants: []string{"listen on " + busy.Addr().String()},
		},
		{
			name:  "bad --log-format",
			args:  []string{"--log-format", "xml"},
			wants: []string{"--log-format must be text or json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if err := os.WriteFile(filepath.Join(e.dir, "scim-token"), []byte("a-token-long-enough-to-be-fine-1234"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(e)
			}
			if b, _ := os.ReadFile(e.config); bytes.Contains(b, []byte("env:ROSTER_SCIM_TOKEN")) {
				editFile(t, e.config, "env:ROSTER_SCIM_TOKEN", "file:scim-token")
			}
			args := append([]string{"serve", "--listen", "127.0.0.1:0"}, tt.args...)
			r := e.roster(args...)
			if r.code != 1 {
				t.Fatalf("want exit 1, got %s", r)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stdout, "listening on") {
				t.Errorf("serve listened despite the error:\n%s", r.stdout)
			}
		})
	}
}

// TestServeReadiness checks /readyz's reasons on a session whose engine
// loop has not run yet.
func TestServeReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := &globals{configPath: e.config, dataDir: e.data, logger: slog.New(slog.DiscardHandler)}
	s, err := g.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var draining atomic.Bool
	if why := notReady(s, &draining); !strings.Contains(why, "first full reconcile") {
		t.Errorf("before Run: %q", why)
	}
	draining.Store(true)
	if why := notReady(s, &draining); why != "shutting down" {
		t.Errorf("draining: %q", why)
	}
	draining.Store(false)

	// The status collector reads the real engine.
	m := newServeMetrics(s.engine)
	want := `
# HELP roster_ready 1 once the first full reconcile has read every app.
# TYPE roster_ready gauge
roster_ready 0
# HELP roster_outbox_depth Actions waiting in the durable outbox.
# TYPE roster_outbox_depth gauge
roster_outbox_depth 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "roster_ready", "roster_outbox_depth"); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if why := notReady(s, &draining); why != "data file closed" {
		t.Errorf("after close: %q", why)
	}
}

// fakeStatus is a statusSource with fixed answers.
type fakeStatus struct {
	ready bool
	st    *lifecycle.StatusReport
	err   error
}

func (f fakeStatus) Ready() bool { return f.ready }
func (f fakeStatus) Status(context.Context) (*lifecycle.StatusReport, error) {
	return f.st, f.err
}

func TestServeStatusMetrics(t *testing.T) {
	t.Parallel()
	m := newServeMetrics(fakeStatus{ready: true, st: &lifecycle.StatusReport{
		Workers:      map[lifecycle.Status]int{lifecycle.Active: 3, lifecycle.Pending: 1, lifecycle.Terminated: 0},
		Transitions:  map[string]int{"joiner": 2},
		Outbox:       7,
		PendingPlans: []string{"p-1"},
		AuditRecords: 42,
	}})
	want := `
# HELP roster_outbox_depth Actions waiting in the durable outbox.
# TYPE roster_outbox_depth gauge
roster_outbox_depth 7
# HELP roster_workers Workers by status.
# TYPE roster_workers gauge
roster_workers{status="active"} 3
roster_workers{status="pending"} 1
roster_workers{status="terminated"} 0
# HELP roster_open_transitions HR changes not yet carried out in every app, by kind.
# TYPE roster_open_transitions gauge
roster_open_transitions{kind="joiner"} 2
# HELP roster_pending_plans Plans held by the safety gate, waiting for ` + "`roster approve`" + `.
# TYPE roster_pending_plans gauge
roster_pending_plans 1
# HELP roster_audit_records Records in the audit log.
# TYPE roster_audit_records gauge
roster_audit_records 42
# HELP roster_ready 1 once the first full reconcile has read every app.
# TYPE roster_ready gauge
roster_ready 1
`
	names := []string{"roster_outbox_depth", "roster_workers", "roster_open_transitions", "roster_pending_plans", "roster_audit_records", "roster_ready"}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// A status that cannot be read fails its own samples, not the scrape.
	m = newServeMetrics(fakeStatus{err: errors.New("disk on fire")})
	mfs, err := m.reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Gather error %v, want the status error", err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "roster_ready" {
			found = true
		}
	}
	if !found {
		t.Errorf("roster_ready missing when the status fails")
	}

	// The HR change histogram takes one observation per OnDone.
	m.done.WithLabelValues("joiner").Observe(0.2)
	m.done.WithLabelValues("leaver").Observe(3)
	if n := testutil.CollectAndCount(m.done, "roster_hr_change_to_done_seconds"); n != 2 {
		t.Errorf("%d histogram series, want 2", n)
	}
}

// TestServeRequestLog checks the request log and the SCIM counters of the
// middleware: method, path, status, duration; never a header or the query.
func TestServeRequestLog(t *testing.T) {
	t.Parallel()
	m := newServeMetrics(fakeStatus{})
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := m.instrument(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/scim/v2/Users":
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "short and stout")
		case "/healthz":
			io.WriteString(w, "ok\n")
		}
	}))
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/scim/v2/Users"},
		{"PROPFIND", "/scim/v2/Users"},
		{http.MethodGet, "/healthz"},
	} {
		req := httptest.NewRequest(tc.method, "http://x"+tc.path+"?filter=secret-in-query", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer super-secret-token")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	got := logs.String()
	if strings.Contains(got, "super-secret-token") || strings.Contains(got, "secret-in-query") {
		t.Errorf("the log holds a header or the query:\n%s", got)
	}
	if !regexp.MustCompile(`msg="http request" method=POST path=/scim/v2/Users status=418 duration_ms=[0-9.e-]+ bytes=15`).MatchString(got) {
		t.Errorf("request log:\n%s", got)
	}
	if strings.Contains(got, "/healthz") {
		t.Errorf("probes are logged at info level:\n%s", got)
	}
	if v := testutil.ToFloat64(m.requests.WithLabelValues("POST", "418")); v != 1 {
		t.Errorf("POST 418 = %v", v)
	}
	if v := testutil.ToFloat64(m.requests.WithLabelValues("other", "418")); v != 1 {
		t.Errorf("other 418 = %v (unknown methods share one label)", v)
	}
	if n := testutil.CollectAndCount(m.requests); n != 2 {
		t.Errorf("%d request series, want 2 (/healthz is not a SCIM request)", n)
	}
}

// TestSCIMMappingsInShippedConfigs keeps the documented configs honest:
// their scim blocks resolve to mappings the SCIM handler accepts.
func TestSCIMMappingsInShippedConfigs(t *testing.T) {
	t.Parallel()
	for _, file := range []string{filepath.Join(sampleDir, "roster.yaml"), "../../config/testdata/full.yaml"} {
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SCIM == nil {
			t.Fatalf("%s has no scim block", file)
		}
		m, err := scimMapping(cfg.SCIM)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		for attr, path := range cfg.SCIM.Mapping {
			if got, ok := m[attr]; (path == "" && ok) || (path != "" && got != path) {
				t.Errorf("%s: %s maps to %q (present %v), want %q", file, attr, got, ok, path)
			}
		}
	}
}

// TestSCIMMappingErrors: a broken override is reported at its own line,
// also when another override is fine.
func TestSCIMMappingErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, mapping, at, want string
	}{
		{"unknown worker attribute", "    title: title\n    shoeSize: title\n", "5:5", "scim.mapping.shoeSize"},
		{"path that does not parse", "    team: \"team[\"\n    title: title\n", "4:5", "scim.mapping.team"},
		{"two attributes on one path", "    team: title\n", "4:5", "scim.mapping.team"},
		{"userName unmapped", "    userName: \"\"\n", "4:5", "userName must be mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nscim:\n  mapping:\n" + tt.mapping + "  tokens: [{name: hr, secret: env:X}]\npolicies: [p/*.yaml]\nconnectors: {g: {type: memory}}\n"
			cfg, err := config.Parse("roster.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			_, err = scimMapping(cfg.SCIM)
			if err == nil {
				t.Fatalf("mapping accepted:\n%s", tt.mapping)
			}
			if !strings.HasPrefix(err.Error(), "roster.yaml:"+tt.at+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want at %s containing %q", err, tt.at, tt.want)
			}
		})
	}
}
