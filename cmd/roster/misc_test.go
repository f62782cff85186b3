package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDemo runs the demo, keeping its files, and checks the story's
// milestones and that the kept data is a valid company.
func TestDemo(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	r := runCLI(t, "demo", "--keep", dir)
	if r.code != 0 {
		t.Fatalf("demo: %s", r)
	}
	out := r.stdout
	wantLines(t, out,
		`^Roster demo: Pied Piper, 6 apps \(github, google, hubspot, slack, zapier, zendesk\)`,
		`^Apply complete: \d+ done, 0 failed, 0 skipped\.`,
		// HR changes arrive over SCIM, on loopback HTTP.
		`^HR -> SCIM: POST /scim/v2/Users -> 201 Created$`,
		`^HR -> SCIM: PATCH /scim/v2/Users/w-\d+ -> 200 OK$`,
		`^    w-[0-9a-f]{16} Laurie Bream -> joiner, status pending\.$`,
		`^    w-\d+ .* -> mover, status active\.$`,
		`^    w-\d+ .* -> leaver, status terminated\.$`,
		`^      ~ account  active -> suspended\s+leaver$`,
		`^Waiting for a grace period \(not in this plan\):$`,
		`^No changes\. Every app matches the policy\.$`,
		`^Audit log OK: \d+ records, chain intact, head [0-9a-f]{16}$`,
		`^  github\s+\d+\s+\d+\s+\d+\s+team/engineering`)
	if regexp.MustCompile(`[1-9]\d* failed`).MatchString(out) {
		t.Errorf("the demo had failures:\n%s", out)
	}
	// The kept company works with the other commands.
	records := regexp.MustCompile(`Audit log OK: (\d+) records`).FindStringSubmatch(out)[1]
	cfg := filepath.Join(dir, "roster.yaml")
	r = runCLI(t, "--config", cfg, "audit", "verify")
	if r.code != 0 || !strings.Contains(r.stdout, "Audit log OK: "+records+" records") {
		t.Errorf("audit verify on the kept demo: want %s records, got %s", records, r)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "roster.db")); err != nil {
		t.Errorf("demo --keep: %v", err)
	}
}

// TestLockedDataFile holds the data file open as another process would
// and checks that commands needing it fail fast with a clear message,
// commands that do not need it still work, and it works once released.
func TestLockedDataFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.MkdirAll(e.data, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.data, "roster.db")
	holder, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	for _, args := range [][]string{{"status"}, {"audit", "verify"}, {"plan"}} {
		done := make(chan result, 1)
		go func() { done <- e.roster(args...) }()
		select {
		case r := <-done:
			want := path + " is locked by another process"
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("roster %s on a locked file: want exit 1 and %q, got %s", strings.Join(args, " "), want, r)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("roster %s hangs on a locked data file", strings.Join(args, " "))
		}
	}
	// Checking the policy needs no data file.
	e.must(0, "policy", "check")

	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.must(0, "status")
	wantLines(t, r.stdout, `^Workers:\s+0 active, 0 pending, 0 terminated$`)
}

// TestApplyConfirm checks that apply without --auto-approve asks, and
// only "yes" applies.
func TestApplyConfirm(t *testing.T) {
	t.Parallel()
	e := newEnvWithData(t)
	csvPath := filepath.Join(e.dir, "hr.csv")
	editCSV(t, csvPath, map[string]map[string]string{"w-058": {"active": "false"}})
	e.must(0, "hr", "import", csvPath)
	for _, answer := range []string{"", "no\n", "y\n", "YES\n"} {
		r := e.rosterIn(answer, "apply")
		if r.code != 1 || !strings.Contains(r.stderr, "apply cancelled") ||
			!strings.Contains(r.stdout, "Do you want to perform these actions? Only 'yes' will be accepted: ") {
			t.Errorf("apply answered %q: want exit 1, apply cancelled; got %s", answer, r)
		}
		e.must(2, "plan", "--detailed-exitcode")
	}
	r := e.rosterIn("yes\n", "apply")
	if r.code != 0 {
		t.Fatalf("apply answered yes: %s", r)
	}
	applied(t, r)
	e.must(0, "plan", "--detailed-exitcode")
}
