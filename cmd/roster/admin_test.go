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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/lifecycle"
)

// adminGolden is the golden directory of the admin API tests.
const adminGolden = "admin-api"

// childServe is `roster serve` running as a child process.
type childServe struct {
	t       testing.TB
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:PORT
	stderr  *lockedBuffer
	exited  chan error
	stopped bool
}

// startChildServe starts the built binary's serve on e and waits until
// its first full reconcile is done (/readyz answers 200).
func startChildServe(t testing.TB, bin string, e *env) *childServe {
	t.Helper()
	cmd := exec.Command(bin, "--config", e.config, "--data-dir", e.data, "serve", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "ROSTER_SCIM_TOKEN=child-scim-token-0123456789abcdef")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &childServe{t: t, cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case first <- sc.Text():
			default:
			}
		}
		c.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if !c.stopped {
			cmd.Process.Kill()
			<-c.exited
		}
	})
	select {
	case l := <-first:
		m := listeningLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("first line %q does not say where serve listens", l)
		}
		c.base = m[1]
	case err := <-c.exited:
		c.stopped = true
		t.Fatalf("serve exited before listening: %v\n%s", err, c.stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not print its address\n%s", c.stderr.String())
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, 15*time.Second, "/readyz", func() bool {
		resp, err := hc.Get(c.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

// stop sends SIGTERM and requires a clean exit.
func (c *childServe) stop() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		c.stopped = true
		if err != nil {
			c.t.Fatalf("serve after SIGTERM: %v\n%s", err, c.stderr.String())
		}
	case <-time.After(20 * time.Second):
		c.t.Fatalf("serve did not stop within 20s of SIGTERM\n%s", c.stderr.String())
	}
}

// seqStep is one command of a sequence and what it printed.
type seqStep struct {
	args   []string
	result result
}

var (
	planIDRE      = regexp.MustCompile(`p-\d{8}-\d{6}-[0-9a-f]{6}`)
	utcTimeRE     = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`)
	rfc3339RE     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	statusAuditRE = regexp.MustCompile(`(?m)^Audit log:\s+(\d+) records, head ([0-9a-f]{16})$`)
)

// normalizer replaces what differs between two runs of the same
// commands on the same state: plan ids made during the run (numbered by
// first appearance), wall-clock times, and audit record counts and heads
// (the server audits every API call: its counts are higher by the api.*
// records, which checkCounts verifies before they are replaced).
type normalizer struct {
	plans map[string]string
}

func (n *normalizer) text(s string) string {
	if n.plans == nil {
		n.plans = map[string]string{}
	}
	s = planIDRE.ReplaceAllStringFunc(s, func(id string) string {
		if _, ok := n.plans[id]; !ok {
			n.plans[id] = fmt.Sprintf("<plan-%d>", len(n.plans)+1)
		}
		return n.plans[id]
	})
	s = utcTimeRE.ReplaceAllString(s, "<time>")
	s = rfc3339RE.ReplaceAllString(s, "<time>")
	s = statusAuditRE.ReplaceAllString(s, "Audit log:     <n> records, head <head>")
	s = verifyRE.ReplaceAllString(s, "Audit log OK: <n> records, chain intact, head <head>")
	return s
}

// session renders a sequence's steps, normalized.
func (n *normalizer) session(t testing.TB, steps []seqStep) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "$ roster %s\nexit %d\n", n.text(strings.Join(s.args, " ")), s.result.code)
		switch {
		case s.result.stdout == "":
		case len(s.args) > 1 && s.args[0] == "audit" && s.args[1] == "export":
			fmt.Fprintf(&b, "--- stdout (normalized records, sorted)\n%s", n.exportBody(t, s.result.stdout))
		default:
			fmt.Fprintf(&b, "--- stdout\n%s", n.text(s.result.stdout))
		}
		if s.result.stderr != "" {
			fmt.Fprintf(&b, "--- stderr\n%s", n.text(s.result.stderr))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// exportRecords parses a JSON Lines export into its records.
func exportRecords(t testing.TB, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// isAPIRecord reports whether an exported record is an api.* record,
// which only the server writes.
func isAPIRecord(m map[string]any) bool {
	typ, _ := m["type"].(string)
	return strings.HasPrefix(typ, "api.")
}

// exportBody normalizes an export for comparison: api.* records left out
// (only the server writes them), seq, time and hashes dropped (they
// differ once api.* records are interleaved, and with the clock), the
// caller's actor named alike (cli:<user> in local mode, socket:<user>
// through the server), plan ids numbered; lines sorted, since actions
// finish, and are audited, in no fixed order.
func (n *normalizer) exportBody(t testing.TB, out string) string {
	t.Helper()
	var lines []string
	for _, m := range exportRecords(t, out) {
		if isAPIRecord(m) {
			continue
		}
		for _, k := range []string{"seq", "time", "prevHash", "hash"} {
			delete(m, k)
		}
		if a, _ := m["actor"].(string); a == "cli" || strings.HasPrefix(a, "cli:") || strings.HasPrefix(a, "socket:") {
			m["actor"] = "<caller>"
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, n.text(strings.TrimSuffix(b.String(), "\n")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// checkCounts checks that the audit record counts `status` and `audit
// verify` printed through the server are the local ones plus the api.*
// records before them, and no more.
func checkCounts(t testing.TB, local, remote []seqStep, remoteExport string) {
	t.Helper()
	apiUpTo := func(n int) int {
		c := 0
		for _, m := range exportRecords(t, remoteExport) {
			if seq, _ := m["seq"].(float64); int(seq) <= n && isAPIRecord(m) {
				c++
			}
		}
		return c
	}
	for i := range local {
		for _, re := range []*regexp.Regexp{statusAuditRE, verifyRE} {
			lm, rm := re.FindStringSubmatch(local[i].result.stdout), re.FindStringSubmatch(remote[i].result.stdout)
			if lm == nil && rm == nil {
				continue
			}
			if lm == nil || rm == nil {
				t.Errorf("roster %s: audit count in one mode only", strings.Join(local[i].args, " "))
				continue
			}
			ln, rn := atoi(t, lm[1]), atoi(t, rm[1])
			if api := apiUpTo(rn); rn-api != ln {
				t.Errorf("roster %s: the server counts %d records (%d api.*), the data file alone %d", strings.Join(local[i].args, " "), rn, api, ln)
			}
		}
	}
}

// adminSequence runs the done-when sequence with the built binary: plan,
// status, apply over the safety threshold (a new pending plan), approve
// the superseded plan (refused), approve the new one, plan again, status,
// audit verify, audit export.
//
// The first export starts at since, when the test began to make the
// state: the sample company's base data before it depends on the date.
func adminSequence(t testing.TB, bin string, e *env, since time.Time) []seqStep {
	t.Helper()
	var steps []seqStep
	runStep := func(want int, args ...string) result {
		t.Helper()
		r := e.runBinary(bin, args...)
		steps = append(steps, seqStep{args: args, result: r})
		if r.code != want {
			t.Fatalf("roster %s: want exit %d, got %s", strings.Join(args, " "), want, r)
		}
		return r
	}
	runStep(2, "plan", "--detailed-exitcode")
	r := runStep(0, "status")
	m := regexp.MustCompile(`(?m)^Pending plans: (p-\S+) \(roster approve ID\)$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("status lists no pending plan:\n%s", r)
	}
	old := m[1]
	r = runStep(3, "apply", "--auto-approve")
	m = regexp.MustCompile(`(?m)^Review it, then run: roster approve (p-\S+)$`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] == old {
		t.Fatalf("apply over the threshold saved no new plan:\n%s", r)
	}
	runStep(1, "approve", old)
	runStep(0, "approve", m[1])
	runStep(0, "plan", "--detailed-exitcode")
	runStep(0, "status")
	runStep(0, "audit", "verify")
	runStep(0, "audit", "export", "--type", "plan.", "--since", since.Format(time.RFC3339Nano))
	runStep(0, "audit", "export")
	return steps
}

// TestAdminAPIChildServe is the done-when: `roster serve` runs
// as a child process on a data dir with a pending plan, and the CLI runs
// plan --detailed-exitcode, status, apply, approve, audit verify and
// audit export against the same data dir while it serves. The same
// commands then run on a copy of the data dir taken before serve
// started, opening the file directly. Both print the same and exit the
// same, up to what necessarily differs (plan ids made during the run,
// times, and the api.* records the server writes for every call), and
// match the golden files.
func TestAdminAPIChildServe(t *testing.T) {
	t.Parallel()
	bin := rosterBinary(t)
	e := newEnvWithData(t)
	since := time.Now().UTC()
	editFile(t, e.config, "suspend: {max: 10, max_percent: 10}", "suspend: {max: 1, max_percent: 100}")
	csvPath := filepath.Join(e.dir, "hr.csv")
	editCSV(t, csvPath, map[string]map[string]string{
		"w-006": {"active": "false"}, "w-007": {"active": "false"}, "w-008": {"active": "false"},
	})
	e.must(0, "hr", "import", csvPath)
	e.must(3, "apply", "--auto-approve")

	local := &env{t: t, dir: e.dir, config: e.config, data: filepath.Join(e.dir, "data-local")}
	copyTree(t, e.data, local.data)
	t.Cleanup(func() { checkDB(t, filepath.Join(local.data, "roster.db")) })

	srv := startChildServe(t, bin, e)
	remote := adminSequence(t, bin, e, since)
	srv.stop()
	if _, err := os.Stat(filepath.Join(e.data, "roster.sock")); err == nil {
		t.Errorf("the admin socket is still there after serve stopped")
	}
	locals := adminSequence(t, bin, local, since)

	// The remote run went through the server: every command's calls are
	// audited, with the socket's user as the actor.
	remoteExport := remote[len(remote)-1].result.stdout
	calls := map[string]int{}
	for _, m := range exportRecords(t, remoteExport) {
		if isAPIRecord(m) {
			d, _ := m["details"].(map[string]any)
			calls[fmt.Sprint(d["method"], " ", d["path"], " ", d["status"])]++
			if a, _ := m["actor"].(string); !strings.HasPrefix(a, "socket:") || m["type"] != "api.call" {
				t.Errorf("api record %v", m)
			}
		}
	}
	for _, want := range []string{"GET /api/v1/plan 200", "GET /api/v1/status 200", "POST /api/v1/apply 409", "GET /api/v1/audit/verify 200", "GET /api/v1/audit/export 200"} {
		if calls[want] == 0 {
			t.Errorf("no api.call record for %s: %v", want, calls)
		}
	}
	if calls["GET /api/v1/plan 200"] != 3 || calls["GET /api/v1/status 200"] != 2 || calls["GET /api/v1/audit/export 200"] != 1 {
		t.Errorf("api.call records %v: want the two plans and the apply's review, two statuses, one export before the last", calls)
	}
	if n := strings.Count(locals[len(locals)-1].result.stdout, `"type":"api.`); n != 0 {
		t.Errorf("the local run wrote %d api.* records", n)
	}
	checkCounts(t, locals, remote, remoteExport)

	// Same output, step by step; the full export compared apart.
	var ln, rn normalizer
	lsess, rsess := ln.session(t, locals[:len(locals)-1]), rn.session(t, remote[:len(remote)-1])
	if lsess != rsess {
		t.Errorf("outputs through the server differ from the data file's:\n%s", lineDiff(lsess, rsess))
	}
	lexp, rexp := ln.exportBody(t, locals[len(locals)-1].result.stdout), rn.exportBody(t, remoteExport)
	if lexp != rexp {
		t.Errorf("audit export through the server differs from the data file's (api.* records left out):\n%s", lineDiff(lexp, rexp))
	}

	// The golden files hold what does not depend on the date the sample
	// company's base data was made: the Workers and "Not yet applied"
	// lines count pending hires and ended contracts as of today.
	dated := regexp.MustCompile(`(?m)^(Workers:|Not yet applied:).*\n`)
	checkGolden(t, filepath.Join("testdata", "golden", adminGolden, "session.txt"), []byte(dated.ReplaceAllString(lsess, "")))
}

// writeSecret writes a token file in dir and returns its reference.
func writeSecret(t testing.TB, dir, name, value string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file:" + name
}

// inProcessServe runs serve in this process on e until the test ends;
// it returns the HTTP base URL.
func inProcessServe(t *testing.T, e *env) (base string, stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--config", e.config, "--data-dir", e.data, "serve", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &stdout, &stderr)
	}()
	waitFor(t, 15*time.Second, "the listening line", func() bool {
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
	stopped := false
	stop = func() result {
		if stopped {
			return result{}
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop within 20s")
		}
		return result{}
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

// apiCall sends one raw admin API request over HTTP.
func apiCall(t testing.TB, method, url, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

// TestAdminAPIAuditorToken: over HTTP, an auditor token exports and
// verifies the audit log, but apply, approve, reject and reload answer
// 403 with a JSON error, and each refusal is audited with the token's
// name; a missing or unknown token (a SCIM token included) is 401,
// audited as anonymous. Secrets appear nowhere.
func TestAdminAPIAuditorToken(t *testing.T) {
	t.Parallel()
	e := newEnvWithData(t)
	const (
		adminTok   = "admin-secret-0123456789abcdefghijklmnop"
		auditorTok = "auditor-secret-0123456789abcdefghijklm"
		scimTok    = "scim-secret-0123456789abcdefghijklmnopq"
	)
	editFile(t, e.config, "env:ROSTER_SCIM_TOKEN", writeSecret(t, e.dir, "scim-token", scimTok))
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = regexp.MustCompile(`(?m)^admin:\n(  #.*\n)*`).ReplaceAll(cfg, []byte(fmt.Sprintf("admin:\n  tokens:\n    - {name: ops, secret: %s, role: admin}\n    - {name: soc2, secret: %s, role: auditor}\n",
		writeSecret(t, e.dir, "admin-token", adminTok), writeSecret(t, e.dir, "auditor-token", auditorTok))))
	if err := os.WriteFile(e.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	e.must(0, "config", "check")
	base, stop := inProcessServe(t, e)

	auditor := func(want int, args ...string) result {
		t.Helper()
		return e.must(want, append([]string{"--server", base, "--token", auditorTok}, args...)...)
	}
	r := auditor(0, "audit", "verify")
	wantLines(t, r.stdout, `^Audit log OK: \d+ records, chain intact, head [0-9a-f]{64}$`)
	r = auditor(0, "audit", "export", "--format", "csv", "--type", "hr.")
	if !strings.HasPrefix(r.stdout, "seq,time,type,actor,") || strings.Count(r.stdout, "\n") < 60 {
		t.Errorf("auditor export:\n%.300s", r.stdout)
	}
	auditor(0, "status")
	auditor(0, "plan", "--detailed-exitcode")
	auditor(0, "workers", "show", "w-001")

	// Writes, through the CLI and raw: 403 with a JSON error body.
	refusedCLI := [][]string{{"apply", "--auto-approve"}, {"approve", "p-20260101-000000-000000"}, {"reject", "p-20260101-000000-000000"}, {"reload"}}
	for _, args := range refusedCLI {
		r := auditor(1, args...)
		if !strings.Contains(r.stderr, "api:soc2 has the auditor role, which may only read") || !strings.Contains(r.stderr, "needs an admin token") {
			t.Errorf("roster %s as auditor: %s", strings.Join(args, " "), r)
		}
	}
	refusedRaw := []struct{ method, path string }{
		{http.MethodPost, "/api/v1/apply"},
		{http.MethodPost, "/api/v1/plans/p-1/approve"},
		{http.MethodPost, "/api/v1/reload"},
	}
	for _, c := range refusedRaw {
		code, body := apiCall(t, c.method, base+c.path, auditorTok)
		if code != http.StatusForbidden || body["kind"] != "forbidden" || !strings.Contains(fmt.Sprint(body["error"]), "auditor role") {
			t.Errorf("%s %s as auditor: %d %v", c.method, c.path, code, body)
		}
	}
	for _, tok := range []string{"", "wrong-" + auditorTok, scimTok} {
		code, body := apiCall(t, http.MethodGet, base+"/api/v1/status", tok)
		if code != http.StatusUnauthorized || body["kind"] != "unauthorized" {
			t.Errorf("GET /status with token %q: %d %v", tok, code, body)
		}
	}
	// The admin token may; reload with an unchanged policy changes nothing.
	code, body := apiCall(t, http.MethodPost, base+"/api/v1/reload", adminTok)
	if code != http.StatusOK || body["changed"] != false {
		t.Errorf("POST /reload as admin: %d %v", code, body)
	}

	// Every refusal is audited: the token's name for a 403, anonymous
	// for a 401, in the order they happened.
	r = e.must(0, "--server", base, "--token", adminTok, "audit", "log", "--type", "api.refused")
	var got []string
	for _, m := range regexp.MustCompile(`(?m)api\.refused\s+(\S+)\s+"([^"]+)"`).FindAllStringSubmatch(r.stdout, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	want := []string{
		"api:soc2 POST /api/v1/apply",
		"api:soc2 POST /api/v1/plans/p-20260101-000000-000000/approve",
		"api:soc2 POST /api/v1/plans/p-20260101-000000-000000/reject",
		"api:soc2 POST /api/v1/reload",
		"api:soc2 POST /api/v1/apply",
		"api:soc2 POST /api/v1/plans/p-1/approve",
		"api:soc2 POST /api/v1/reload",
		"anonymous GET /api/v1/status",
		"anonymous GET /api/v1/status",
		"anonymous GET /api/v1/status",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("api.refused records:\n%s\nwant:\n%s\n(log:\n%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), r.stdout)
	}
	if !strings.Contains(r.stdout, "status=403") || !strings.Contains(r.stdout, "status=401") || !strings.Contains(r.stdout, "role=auditor") {
		t.Errorf("api.refused details:\n%s", r.stdout)
	}
	// The auditor's reads are audited too, as api.call.
	r = e.must(0, "--server", base, "--token", adminTok, "audit", "log", "--type", "api.call")
	for _, p := range []string{"GET /api/v1/audit/verify", "GET /api/v1/audit/export", "GET /api/v1/status", "GET /api/v1/workers/w-001"} {
		if !regexp.MustCompile(`api:soc2\s+"` + regexp.QuoteMeta(p) + `"`).MatchString(r.stdout) {
			t.Errorf("no api.call record of api:soc2 for %s:\n%s", p, r.stdout)
		}
	}

	res := stop()
	if res.code != 0 {
		t.Fatalf("serve: %s", res)
	}
	all := e.must(0, "audit", "export").stdout + res.stdout + res.stderr
	for _, s := range []string{adminTok, auditorTok, scimTok} {
		if strings.Contains(all, s) {
			t.Errorf("a token appears in the audit log or the server's output")
		}
	}
	e.must(0, "audit", "verify")
}

// TestAdminSocket: serve replaces a stale socket, makes it 0600, and
// removes it when it stops; commands find it and go through it (the
// socket's user is the actor), a plan that changed since it was reviewed
// is refused, a what-if plan prints what it prints locally, and a second
// serve on the same data dir says one is running.
func TestAdminSocket(t *testing.T) {
	t.Parallel()
	e := newEnvWithData(t)
	editFile(t, e.config, "env:ROSTER_SCIM_TOKEN", writeSecret(t, e.dir, "scim-token", "scim-secret-0123456789abcdefghijklmnopq"))
	sock := filepath.Join(e.data, "roster.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if probeSocket(context.Background(), sock) != socketStale {
		t.Fatal("the stale socket answers")
	}

	_, stop := inProcessServe(t, e)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %v, mode %v; want a socket with mode 0600", err, fi.Mode())
	}
	r := e.must(0, "status")
	wantLines(t, r.stdout, `^Pending plans: none$`, `^Last reconcile: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, every app read$`)

	// A plan the caller did not review is not applied.
	rb := newSocketRemote(sock)
	defer rb.Close()
	_, err = rb.Apply(context.Background(), "", &lifecycle.Plan{Steps: []lifecycle.Step{{ID: "not-a-step"}}})
	if !strings.Contains(fmt.Sprint(err), "the plan changed since it was shown") {
		t.Errorf("apply of another plan: %v", err)
	}
	var pc *lifecycle.PlanChangedError
	if !errors.As(err, &pc) || pc.Steps != 0 || !errors.Is(err, lifecycle.ErrPlanChanged) {
		t.Errorf("apply of another plan: %T %v", err, err)
	}

	// What-if over the socket, broken and not.
	proposed := filepath.Join(e.dir, "proposed")
	copyTree(t, filepath.Join(e.dir, "policies"), proposed)
	editFile(t, filepath.Join(proposed, "birthright.yaml"), "channel/general", "channel/all-hands")
	whatIf := e.must(2, "plan", "--detailed-exitcode", "--policies", proposed)
	broken := filepath.Join(e.dir, "broken")
	copyTree(t, proposed, broken)
	editFile(t, filepath.Join(broken, "birthright.yaml"), "roles:", "roles:\n  - name: Bad Name\n    grants: {}")
	whatIfBroken := e.must(1, "plan", "--policies", broken)

	// A second server on the same data dir.
	r = e.must(1, "serve", "--listen", "127.0.0.1:0")
	if !strings.Contains(r.stderr, "is locked by a running roster serve (it answers on "+sock+")") {
		t.Errorf("second serve: %s", r)
	}

	if res := stop(); res.code != 0 {
		t.Fatalf("serve: %s", res)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("the admin socket is still there after serve stopped")
	}
	r = e.must(0, "audit", "log", "--type", "api.call")
	if !regexp.MustCompile(`api\.call\s+socket:\S+\s+"GET /api/v1/status"`).MatchString(r.stdout) {
		t.Errorf("no api.call record by the socket's user:\n%s", r.stdout)
	}
	// The same what-ifs without the server.
	if r := e.must(2, "plan", "--detailed-exitcode", "--policies", proposed); r.stdout != whatIf.stdout {
		t.Errorf("what-if through the server differs:\n%s", lineDiff(r.stdout, whatIf.stdout))
	}
	if r := e.must(1, "plan", "--policies", broken); r.stderr != whatIfBroken.stderr || !strings.Contains(r.stderr, "proposed policies in "+broken+": "+filepath.Join(broken, "birthright.yaml")+":") {
		t.Errorf("broken what-if through the server:\n%s\nlocally:\n%s", whatIfBroken.stderr, r.stderr)
	}
}

// TestLockedWithoutServer: a data file locked by a process that is no
// server fails every command within a bound, with a message that says
// what to do: no socket, a stale socket, the socket turned off.
func TestLockedWithoutServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env)
		cmds  [][]string
		wants []string
	}{
		{"no socket", nil, [][]string{{"plan", "--detailed-exitcode"}, {"audit", "verify"}, {"approve", "p-1"}}, []string{"is locked by another process", "no roster serve answers for this data dir (no admin socket at", "wait for it to finish and retry", "--server URL"}},
		{"stale socket", func(t *testing.T, e *env) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(e.data, "roster.sock"), Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}, [][]string{{"status"}}, []string{"is locked by another process", "is there but nothing answers on it (stale", "stop it, and retry"}},
		{"socket off", func(t *testing.T, e *env) {
			editFile(t, e.config, "  # socket: /run/roster/roster.sock", "  socket: \"off\"")
		}, [][]string{{"status"}}, []string{"is locked by another process", "admin.socket is off", "--server URL --token TOKEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWithData(t)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			holder, err := bolt.Open(filepath.Join(e.data, "roster.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()
			for _, args := range tt.cmds {
				start := time.Now()
				r := e.roster(args...)
				took := time.Since(start)
				// A bound against hanging, not a performance check: the
				// lock wait is one second, a stale socket's probe less.
				if took > 3*time.Second {
					t.Errorf("roster %s took %v on a locked file", strings.Join(args, " "), took)
				}
				if r.code != 1 {
					t.Errorf("roster %s: want exit 1, got %s", strings.Join(args, " "), r)
				}
				for _, w := range tt.wants {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("roster %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, r.stderr)
					}
				}
			}
		})
	}
}

// TestAdminAPIErrors checks the wire form of errors: each comes back
// from JSON as the error the local backend returns, with its message,
// so commands handle and print both alike.
func TestAdminAPIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		status int
		kind   string
		same   func(error) bool
	}{
		{&lifecycle.ApprovalRequiredError{PlanID: "p-1", Exceeded: []string{"suspend: 3 workers > max 1"}}, http.StatusConflict, kindApprovalRequired, func(e error) bool {
			var ar *lifecycle.ApprovalRequiredError
			return errors.As(e, &ar) && ar.PlanID == "p-1" && len(ar.Exceeded) == 1 && errors.Is(e, lifecycle.ErrApprovalRequired)
		}},
		{&lifecycle.PlanChangedError{Reviewed: "a", Current: "b", Steps: 3}, http.StatusConflict, kindPlanChanged, func(e error) bool {
			return errors.Is(e, lifecycle.ErrPlanChanged)
		}},
		{fmt.Errorf("audit: verify: %w", &audit.ChainError{Seq: 7, Reason: "hash mismatch: record content changed"}), http.StatusConflict, kindChain, func(e error) bool {
			var ce *audit.ChainError
			return errors.As(e, &ce) && ce.Seq == 7 && ce.Reason == "hash mismatch: record content changed"
		}},
		{fmt.Errorf("plan p-9: %w", lifecycle.ErrNotFound), http.StatusNotFound, kindNotFound, func(e error) bool {
			return errors.Is(e, lifecycle.ErrNotFound) && e.Error() == "plan p-9: not found"
		}},
		{errors.New("disk on fire"), http.StatusInternalServerError, kindInternal, func(e error) bool { return e.Error() == "disk on fire" }},
	}
	for _, tt := range tests {
		status, re := toRemote(tt.err, http.StatusInternalServerError)
		if status != tt.status || re.Kind != tt.kind || re.Message != tt.err.Error() {
			t.Errorf("%v: status %d, %+v; want %d, kind %s", tt.err, status, re, tt.status, tt.kind)
		}
		b, err := json.Marshal(errorBody{remoteError: *re})
		if err != nil {
			t.Fatal(err)
		}
		var back errorBody
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := back.typed(); !tt.same(got) {
			t.Errorf("%v came back as %T %v", tt.err, got, got)
		}
	}
}

// Anonymous callers cannot grow the audit log at will: their refusals are
// recorded in a burst and then one a second, with the number left out,
// and a recorded path is cut short. A known caller's refusals are all
// recorded.
func TestAdminAPIRefusalsAreThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const (
		adminTok   = "admin-secret-0123456789abcdefghijklmnop"
		auditorTok = "auditor-secret-0123456789abcdefghijklm"
	)
	editFile(t, e.config, "env:ROSTER_SCIM_TOKEN", writeSecret(t, e.dir, "scim-token", "scim-secret-0123456789abcdefghijklmnopq"))
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = regexp.MustCompile(`(?m)^admin:\n(  #.*\n)*`).ReplaceAll(cfg, []byte(fmt.Sprintf("admin:\n  tokens:\n    - {name: ops, secret: %s, role: admin}\n    - {name: aud, secret: %s, role: auditor}\n",
		writeSecret(t, e.dir, "admin-token", adminTok), writeSecret(t, e.dir, "auditor-token", auditorTok))))
	if err := os.WriteFile(e.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	base, _ := inProcessServe(t, e)
	const auditorRefusals = 2 * refusalBurst
	for range auditorRefusals {
		if code, _ := apiCall(t, http.MethodPost, base+"/api/v1/reload", auditorTok); code != http.StatusForbidden {
			t.Fatalf("auditor reload: %d, want 403", code)
		}
	}
	long := "/api/v1/" + strings.Repeat("A", 20000)
	for range 200 {
		if code, _ := apiCall(t, http.MethodGet, base+long, "wrong-token"); code != http.StatusUnauthorized {
			t.Fatalf("anonymous call: %d, want 401", code)
		}
	}
	r := e.must(0, "--server", base, "--token", adminTok, "audit", "export", "--type", "api.refused")
	recs := exportRecords(t, r.stdout)
	anonymous, auditor := 0, 0
	for _, rec := range recs {
		switch rec["actor"] {
		case "anonymous":
			anonymous++
		case "api:aud":
			auditor++
		}
	}
	if anonymous < refusalBurst || anonymous > refusalBurst+5 {
		t.Errorf("%d anonymous refusals recorded for 200 calls within a moment, want about %d", anonymous, refusalBurst)
	}
	if auditor != auditorRefusals {
		t.Errorf("%d of the auditor's %d refusals recorded, want all", auditor, auditorRefusals)
	}
	for _, rec := range recs {
		if d, _ := rec["details"].(map[string]any); len(fmt.Sprint(d["path"])) > maxAuditPath+len("…") {
			t.Fatalf("a recorded path is %d bytes long", len(fmt.Sprint(d["path"])))
		}
	}
}

func TestRefusalLimiter(t *testing.T) {
	var l refusalLimiter
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i := range refusalBurst {
		if ok, _ := l.allow(now); !ok {
			t.Fatalf("refusal %d of the burst turned down", i+1)
		}
	}
	for range 10 {
		if ok, _ := l.allow(now); ok {
			t.Fatal("a refusal past the burst was allowed at once")
		}
	}
	ok, n := l.allow(now.Add(1500 * time.Millisecond))
	if !ok || n != 10 {
		t.Fatalf("a second later: allowed %v, %d not recorded; want true, 10", ok, n)
	}
}

// A framed export passes the data through without its end line, which
// carries the count (or the error); a stream cut short has no end.
func TestFramedReader(t *testing.T) {
	for _, tc := range []struct {
		name, in, data string
		end            *exportEnd
	}{
		{"whole", "a,1\nb,2\n" + endMarker + `{"records":2}` + "\n", "a,1\nb,2\n", &exportEnd{Records: 2}},
		{"empty", endMarker + `{"records":0}` + "\n", "", &exportEnd{}},
		{"error", "a\n" + endMarker + `{"records":1,"error":"chain broken at record 7"}` + "\n", "a\n", &exportEnd{Records: 1, Error: "chain broken at record 7"}},
		{"cut between lines", "a\nb\n", "a\nb\n", nil},
		{"cut in a line", "a\nb,2", "a\nb,2", nil},
		{"cut in the end line", "a\n" + endMarker + `{"rec`, "a\n" + endMarker + `{"rec`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := &framedReader{r: bufio.NewReaderSize(strings.NewReader(tc.in), 16)}
			b, err := io.ReadAll(fr)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.data {
				t.Errorf("data %q, want %q", b, tc.data)
			}
			if (fr.end == nil) != (tc.end == nil) || fr.end != nil && *fr.end != *tc.end {
				t.Errorf("end %+v, want %+v", fr.end, tc.end)
			}
		})
	}
}
