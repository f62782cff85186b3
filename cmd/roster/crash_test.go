package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
	"github.com/rosterhq/roster/lifecycle"
)

// rosterBinary builds the roster command once per test binary.
func rosterBinary(t testing.TB) string {
	t.Helper()
	fx.binOnce.Do(func() {
		fx.binErr = func() error {
			out, err := exec.Command("go", "env", "GOMOD").Output()
			if err != nil {
				return fmt.Errorf("go env GOMOD: %w", err)
			}
			gomod := strings.TrimSpace(string(out))
			if gomod == "" || gomod == os.DevNull {
				return fmt.Errorf("not inside a Go module")
			}
			bin := filepath.Join(fx.root, "roster")
			cmd := exec.Command("go", "build", "-o", bin, "./cmd/roster")
			cmd.Dir = filepath.Dir(gomod)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build: %w\n%s", err, out)
			}
			fx.bin = bin
			return nil
		}()
	})
	if fx.binErr != nil {
		t.Fatal(fx.binErr)
	}
	return fx.bin
}

// runBinary runs the built roster with e's config and data dir.
func (e *env) runBinary(bin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config", e.config, "--data-dir", e.data}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("roster %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// crashState is what the data file holds about an apply.
type crashState struct {
	outbox   int
	intents  []audit.Record
	outcomes []audit.Record
}

func readCrashState(t testing.TB, path string) crashState {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s crashState
	if err := db.View(func(tx *bolt.Tx) error {
		s.outbox = tx.Bucket([]byte("outbox")).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err = audit.New(db, nil).Query(context.Background(), audit.Filter{Type: "action."}, func(r audit.Record) error {
		switch r.Type {
		case "action.intent":
			s.intents = append(s.intents, r)
		case "action.outcome":
			s.outcomes = append(s.outcomes, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCrashResume kills `roster apply` with SIGKILL in the middle of the
// first apply, runs it again, and proves every action took effect
// exactly once: in the apps, in the audit log, and in the chain.
func TestCrashResume(t *testing.T) {
	t.Parallel()
	bin := rosterBinary(t)
	e := newEnv(t)
	// Slow apps, so the first apply takes a few seconds.
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	settings := regexp.MustCompile(`(?m)^    settings:\n`)
	if n := len(settings.FindAllIndex(cfg, -1)); n != 6 {
		t.Fatalf("roster.yaml has %d connector settings blocks, want 6", n)
	}
	cfg = settings.ReplaceAll(cfg, []byte("    settings:\n      latency: 10ms\n"))
	if err := os.WriteFile(e.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.runBinary(bin, "hr", "import", filepath.Join(e.dir, "hr.csv")); r.code != 0 {
		t.Fatalf("hr import: %s", r)
	}

	// Start the apply with debug logs (one line per finished action);
	// once it has finished a few dozen actions, kill it.
	cmd := exec.Command(bin, "--config", e.config, "--data-dir", e.data, "-v", "apply", "--auto-approve")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	planned := make(chan string, 1)
	var first bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			first.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Plan:") {
				planned <- sc.Text()
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	const killAfter = 40
	progressed := make(chan struct{})
	var stderr bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderrPipe)
		done := 0
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "action finished") {
				if done++; done == killAfter {
					close(progressed)
				}
			}
		}
	}()
	var summary string
	select {
	case summary = <-planned:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("apply printed no plan within 60s")
	}
	select {
	case <-progressed:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("apply finished no %d actions within 60s", killAfter)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Fatalf("apply was not killed (it finished first?): %v\n%s", err, first.String())
	}
	total := planTotal(t, summary)

	db := filepath.Join(e.data, "roster.db")
	checkDB(t, db) // the kill left a consistent file
	mid := readCrashState(t, db)
	ok := 0
	for _, r := range mid.outcomes {
		if r.Outcome == "ok" {
			ok++
		}
	}
	t.Logf("killed with %d of %d actions done, %d in the outbox", ok, total, mid.outbox)
	if len(mid.intents) != total {
		t.Fatalf("the plan announced %d actions, %d intents were audited", total, len(mid.intents))
	}
	if mid.outbox == 0 || mid.outbox+len(mid.outcomes) != total {
		t.Fatalf("not killed mid-apply: %d in the outbox, %d outcomes, %d planned", mid.outbox, len(mid.outcomes), total)
	}

	// Run it again to completion: it finishes the outbox, and then there
	// is nothing left to plan.
	r := e.runBinary(bin, "apply", "--auto-approve")
	if r.code != 0 {
		t.Fatalf("apply after the crash: %s", r)
	}
	wantLines(t, r.stdout,
		fmt.Sprintf(`^Finished %d actions left in the outbox by an earlier run \(0 failed\)\.$`, mid.outbox),
		`^No changes\. Every app matches the policy\.$`)
	if r := e.runBinary(bin, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Fatalf("plan after the resumed apply: %s", r)
	}
	if r := e.runBinary(bin, "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "chain intact") {
		t.Fatalf("audit verify: %s", r)
	}
	t.Run("transitions settled", func(t *testing.T) {
		// Every worker's joiner transition is carried out, except the
		// pending hires', even when the resumed run's own plan is empty.
		want := expectedStatuses(t, e.config, filepath.Join(e.dir, "hr.csv"))[lifecycle.Pending]
		r := e.runBinary(bin, "status")
		m := regexp.MustCompile(`(?m)^Not yet applied: (\d+) joiners?$`).FindStringSubmatch(r.stdout)
		if r.code != 0 || (m == nil && want != 0) || (m != nil && atoi(t, m[1]) != want) || !strings.Contains(r.stdout, "Last apply:") {
			t.Errorf("transitions not settled after a resumed apply; want %d open joiners (the pending hires) and a Last apply line:\n%s", want, r.stdout)
		}
	})
	end := readCrashState(t, db)
	if end.outbox != 0 {
		t.Errorf("%d actions left in the outbox", end.outbox)
	}

	// (b) The audit log: one ok outcome per intended action, no more.
	outcomes := map[string][]audit.Record{}
	for _, r := range end.outcomes {
		outcomes[r.ActionID] = append(outcomes[r.ActionID], r)
	}
	if len(end.intents) != total {
		t.Errorf("%d intents after the resume, want %d", len(end.intents), total)
	}
	for _, in := range end.intents {
		got := outcomes[in.ActionID]
		if len(got) != 1 || got[0].Outcome != "ok" || got[0].PlanID != in.PlanID {
			t.Errorf("action %s (%s %s %s %s): outcomes %+v, want exactly one ok", in.ActionID, in.App, in.Action, in.Worker, in.Entitlement, got)
		}
		delete(outcomes, in.ActionID)
	}
	for id, rs := range outcomes {
		t.Errorf("outcome without an intent: %s %+v", id, rs)
	}

	// (a) The apps: every intended change happened exactly once, and
	// nothing else happened.
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	type change struct {
		app    string
		kind   connectors.ActionKind
		worker connectors.WorkerID
		ent    string
	}
	intended := map[change]int{}
	for _, in := range end.intents {
		intended[change{in.App, connectors.ActionKind(in.Action), connectors.WorkerID(in.Worker), in.Entitlement}]++
	}
	made := map[change]int{}
	for _, app := range []string{"github", "google", "hubspot", "slack", "zapier", "zendesk"} {
		m, err := memory.New(app, memory.Config{}, bdb, nil)
		if err != nil {
			t.Fatal(err)
		}
		changes, err := m.Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			made[change{app, c.Kind, c.Worker, c.Entitlement.String()}]++
		}
		st, err := m.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		owners := map[connectors.WorkerID]connectors.AccountID{}
		for _, a := range st.Accounts {
			if prev, dup := owners[a.Worker]; dup {
				t.Errorf("%s: worker %s has two accounts, %s and %s", app, a.Worker, prev, a.ID)
			}
			owners[a.Worker] = a.ID
			keys := map[connectors.EntitlementKey]bool{}
			for _, en := range a.Entitlements {
				if keys[en.Key()] {
					t.Errorf("%s: account %s holds %s twice", app, a.ID, en.Key())
				}
				keys[en.Key()] = true
				if intended[change{app, connectors.Grant, a.Worker, en.String()}] != 1 {
					t.Errorf("%s: account %s holds %s, which was not granted exactly once", app, a.ID, en)
				}
			}
		}
	}
	for c, n := range made {
		if n != 1 || intended[c] != 1 {
			t.Errorf("change %+v made %d times, intended %d times", c, n, intended[c])
		}
	}
	for c, n := range intended {
		if made[c] != n {
			t.Errorf("intended change %+v made %d times", c, made[c])
		}
	}
}
