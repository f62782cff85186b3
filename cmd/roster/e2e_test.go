package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/lifecycle/hr"
)

// editCSV changes columns of the rows with the given ids in an HR file.
func editCSV(t testing.TB, path string, changes map[string]map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	done := map[string]bool{}
	for _, row := range rows[1:] {
		ch, ok := changes[row[col["id"]]]
		if !ok {
			continue
		}
		for k, v := range ch {
			i, ok := col[k]
			if !ok {
				t.Fatalf("%s: no column %q", path, k)
			}
			row[i] = v
		}
		done[row[col["id"]]] = true
	}
	for id := range changes {
		if !done[id] {
			t.Fatalf("%s: no row with id %s", path, id)
		}
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(out)
	if err := w.WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// expectedStatuses counts the workers of an HR file by the status their
// record implies now: the numbers `roster status` must show.
func expectedStatuses(t testing.TB, configPath, csvPath string) map[lifecycle.Status]int {
	t.Helper()
	cfg, err := config.Load(configPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file, err := hr.ReadCSV(csvPath, f)
	if err != nil {
		t.Fatal(err)
	}
	recs := file.Records
	out := map[lifecycle.Status]int{}
	now := time.Now()
	for i := range recs {
		out[lifecycle.EffectiveStatus(&recs[i], false, now, cfg.Location)]++
	}
	return out
}

var (
	summaryRE = regexp.MustCompile(`(?m)^Plan: (\d+) to create, (\d+) to grant, (\d+) to change, (\d+) to revoke, (\d+) to suspend, (\d+) to restore, (\d+) to delete\.$`)
	applyRE   = regexp.MustCompile(`(?m)^Apply complete: (\d+) done, (\d+) failed, (\d+) skipped\.`)
	verifyRE  = regexp.MustCompile(`(?m)^Audit log OK: (\d+) records, chain intact, head ([0-9a-f]{64})$`)
)

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// planTotal is the number of steps the summary line of a rendered plan
// announces.
func planTotal(t testing.TB, out string) int {
	t.Helper()
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no plan summary line in:\n%s", out)
	}
	n := 0
	for _, s := range m[1:] {
		n += atoi(t, s)
	}
	return n
}

// applied checks an apply's report: every announced step done, none
// failed or skipped. It returns the number done.
func applied(t testing.TB, r result) int {
	t.Helper()
	m := applyRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no 'Apply complete' line:\n%s", r)
	}
	done, failed, skipped := atoi(t, m[1]), atoi(t, m[2]), atoi(t, m[3])
	if failed != 0 || skipped != 0 {
		t.Fatalf("apply: %d failed, %d skipped:\n%s", failed, skipped, r)
	}
	if want := planTotal(t, r.stdout); done != want {
		t.Fatalf("apply did %d actions, the plan announced %d:\n%s", done, want, r)
	}
	return done
}

// auditHead returns the record count and head `audit verify` reports.
func (e *env) auditHead() (int, string) {
	e.t.Helper()
	r := e.must(0, "audit", "verify")
	m := verifyRE.FindStringSubmatch(r.stdout)
	if m == nil {
		e.t.Fatalf("audit verify: unexpected output:\n%s", r)
	}
	return atoi(e.t, m[1]), m[2]
}

// planJSON runs `plan -o json` and decodes it.
func (e *env) planJSON(args ...string) *lifecycle.Plan {
	e.t.Helper()
	r := e.roster(append([]string{"plan", "-o", "json"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("plan -o json: %s", r)
	}
	var p lifecycle.Plan
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		e.t.Fatalf("plan -o json does not parse: %v\n%s", err, r.stdout)
	}
	if p.Steps == nil {
		e.t.Errorf("plan -o json: steps is null, want a list")
	}
	return &p
}

func wantLines(t testing.TB, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
			t.Errorf("output lacks a line matching %q:\n%s", p, out)
		}
	}
}

// TestEndToEnd drives the whole life of the sample company through run():
// import, apply, idempotent re-runs, status, policy commands, a mover and
// a leaver, JSON output and a what-if plan.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	csvPath := filepath.Join(e.dir, "hr.csv")

	r := e.must(0, "version")
	wantLines(t, r.stdout, `^roster \S+ \(go[0-9.]+\S*\)$`)

	r = e.must(0, "config", "check")
	wantLines(t, r.stdout, `^Config OK: `+regexp.QuoteMeta(e.config)+`$`, `^  data dir:\s+`+regexp.QuoteMeta(e.data)+`$`,
		`^  timezone:\s+America/Los_Angeles$`, `^  policies:\s+\d+ roles in 7 files$`)
	for _, app := range []string{"github", "google", "hubspot", "slack", "zapier", "zendesk"} {
		wantLines(t, r.stdout, `^    `+app+`\s+memory\s+kinds: account`)
	}

	want := expectedStatuses(t, e.config, csvPath)
	r = e.must(0, "hr", "import", csvPath)
	joiners := want[lifecycle.Active] + want[lifecycle.Pending]
	wantLines(t, r.stdout, `^Imported 60 records \(0 unchanged\): `+strconv.Itoa(joiners)+` joiners?\.$`)

	r = e.must(0, "apply", "--auto-approve")
	wantLines(t, r.stdout, `^Roster will perform the following actions:$`, `^  # w-011 Marcus Webb <marcus.webb@piedpiper.com>$`)
	done := applied(t, r)
	if done < 500 {
		t.Errorf("the first apply did only %d actions", done)
	}

	r = e.must(0, "plan", "--detailed-exitcode")
	wantLines(t, r.stdout, `^No changes\. Every app matches the policy\.$`)
	if p := e.planJSON(); len(p.Steps) != 0 || p.PolicyHash == "" || p.Managed != joiners {
		t.Errorf("plan -o json after the apply: %d steps, policy hash %q, %d managed (want 0, a hash, %d)", len(p.Steps), p.PolicyHash, p.Managed, joiners)
	}

	records, head := e.auditHead()
	r = e.must(0, "apply", "--auto-approve")
	wantLines(t, r.stdout, `^No changes\.`)
	if strings.Contains(r.stdout, "Apply complete") {
		t.Errorf("a second apply did something:\n%s", r)
	}
	if n, h := e.auditHead(); n != records || h != head {
		t.Errorf("a second apply wrote to the audit log: %d records (head %s), was %d (%s)", n, h, records, head)
	}

	r = e.must(0, "status")
	wantLines(t, r.stdout,
		`^Workers:\s+`+strconv.Itoa(want[lifecycle.Active])+` active, `+strconv.Itoa(want[lifecycle.Pending])+` pending, `+strconv.Itoa(want[lifecycle.Terminated])+` terminated$`,
		`^Apps:\s+github, google, hubspot, slack, zapier, zendesk$`,
		`^Outbox:\s+0 actions waiting$`,
		`^Pending plans: none$`,
		`^Last apply:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`,
		`^Audit log:\s+`+strconv.Itoa(records)+` records, head `+head[:16]+`$`)

	r = e.must(0, "policy", "check")
	wantLines(t, r.stdout, `^Policy OK: \d+ roles in 7 files \(hash [0-9a-f]{16}\)\.$`)

	r = e.must(0, "policy", "test")
	wantLines(t, r.stdout, `^\d+ passed, 0 failed$`, `^PASS  `)
	if strings.Contains(r.stdout, "FAIL") {
		t.Errorf("policy test failed:\n%s", r)
	}

	r = e.must(0, "policy", "explain", "marcus.webb@piedpiper.com")
	wantLines(t, r.stdout,
		`^Worker w-011 Marcus Webb <marcus.webb@piedpiper.com>: active `,
		`^  engineer\s+when worker\.division == "Engineering"`,
		`^  github:team/backend#member\s+<- role engineer`,
		`^  github:team/engineering#member\s+<- role engineer`,
		`^  slack:usergroup/oncall\s+<- role engineer$`)
	e.must(1, "policy", "explain", "nobody@piedpiper.com")

	// A mover (Marcus, engineering -> marketing) and a leaver (Tara).
	editCSV(t, csvPath, map[string]map[string]string{
		"w-011": {"division": "Go-To-Market", "department": "Marketing", "team": "", "title": "Product Marketing Manager"},
		"w-006": {"active": "false"},
	})
	r = e.must(0, "hr", "import", csvPath)
	wantLines(t, r.stdout, `^Imported 60 records \(58 unchanged\): 1 mover, 1 leaver\.$`)

	r = e.must(2, "plan", "--detailed-exitcode")
	wantLines(t, r.stdout,
		`^  # w-011 Marcus Webb <marcus.webb@piedpiper.com>$`,
		`^      \+ account\s+mover \(role marketer\)$`,
		`^      \+ role/Marketing User\s+mover \(role marketer\)$`,
		`^      - usergroup/oncall\s+mover \(role engineer\)$`,
		`^Waiting for a grace period \(not in this plan\):$`,
		`^  - w-011 Marcus Webb <marcus.webb@piedpiper.com> github: revoke team/backend#member until \S+ \(mover\)$`,
		`^  # w-006 Tara Lindqvist <tara.lindqvist@piedpiper.com>$`,
		`^      ~ account  active -> suspended\s+leaver$`,
		`^      - role/Marketing User\s+leaver$`,
		`^Plan: 2 to create, 5 to grant, 0 to change, 14 to revoke, 5 to suspend, 0 to restore, 0 to delete\.$`)
	if strings.Contains(r.stdout, "w-001 ") {
		t.Errorf("the plan touches a worker who did not change:\n%s", r.stdout)
	}

	p := e.planJSON()
	if got, want := p.Summary(), (lifecycle.Summary{Create: 2, Grant: 5, Revoke: 14, Suspend: 5, Deferred: 4}); got != want {
		t.Errorf("plan -o json summary %+v, want %+v", got, want)
	}
	for _, st := range p.Steps {
		switch w := st.Action.Person.Worker; {
		case w == "w-006" && st.Action.Reason != lifecycle.Leaver, w == "w-011" && st.Action.Reason != lifecycle.Mover:
			t.Errorf("step %s has reason %q", st.Action, st.Action.Reason)
		case w != "w-006" && w != "w-011":
			t.Errorf("unexpected step %s", st.Action)
		}
		if st.ID != lifecycle.StepID(st.Action) {
			t.Errorf("step %s: id %s, want %s", st.Action, st.ID, lifecycle.StepID(st.Action))
		}
	}
	// The import audited 2 HR records and 2 transitions; plans audit
	// nothing.
	if n, _ := e.auditHead(); n != records+4 {
		t.Errorf("after the import and two plans: %d audit records, want %d", n, records+4)
	}
	records, head = e.auditHead()

	// What-if: a proposed policy adds #campaigns to every marketer.
	proposed := filepath.Join(t.TempDir(), "proposed")
	copyTree(t, filepath.Join(e.dir, "policies"), proposed)
	editFile(t, filepath.Join(proposed, "gtm.yaml"), "slack: [channel/marketing]", "slack: [channel/marketing, channel/campaigns]")
	e.must(0, "policy", "check", "--policies", proposed)
	wi := e.planJSON("--policies", proposed)
	campaigns := map[connectors.WorkerID]bool{}
	for _, st := range wi.Steps {
		if st.Action.Entitlement.String() == "channel/campaigns" {
			if st.Action.Kind != connectors.Grant || st.Action.App != "slack" {
				t.Errorf("what-if: unexpected step %s", st.Action)
			}
			campaigns[st.Action.Person.Worker] = true
		}
	}
	if !campaigns["w-036"] || !campaigns["w-011"] || campaigns["w-006"] || campaigns["w-007"] {
		t.Errorf("what-if: #campaigns for %v, want the marketers w-036 and w-011 (new), not w-006 (leaver) or w-007 (sales)", campaigns)
	}
	if len(wi.Steps) != len(p.Steps)+len(campaigns) {
		t.Errorf("what-if plan has %d steps, want the %d pending ones plus %d for #campaigns", len(wi.Steps), len(p.Steps), len(campaigns))
	}
	r = e.must(2, "plan", "--detailed-exitcode", "--policies", proposed)
	wantLines(t, r.stdout, `^      \+ channel/campaigns\s+policy change \(role marketer\)$`)
	// The configured policy is still the one in force.
	if got := e.planJSON(); got.Fingerprint() != p.Fingerprint() {
		t.Errorf("after a what-if, plan changed: %d steps, want %d", len(got.Steps), len(p.Steps))
	}
	if n, h := e.auditHead(); n != records || h != head {
		t.Errorf("plan --policies wrote to the audit log: %d records, want %d", n, records)
	}

	// Apply the mover and the leaver. Marcus keeps his engineering access
	// for the 72h grace: the next plan has nothing to do, only waits.
	r = e.must(0, "apply", "--auto-approve")
	if n := applied(t, r); n != len(p.Steps) {
		t.Errorf("apply did %d actions, want %d", n, len(p.Steps))
	}
	r = e.must(0, "plan", "--detailed-exitcode")
	wantLines(t, r.stdout, `^Waiting for a grace period \(not in this plan\):$`,
		`^Plan: 0 to create, 0 to grant, 0 to change, 0 to revoke, 0 to suspend, 0 to restore, 0 to delete\.$`)
	if strings.Contains(r.stdout, "campaigns") {
		t.Errorf("the what-if policy leaked into the configured one:\n%s", r.stdout)
	}
	r = e.must(0, "status")
	want = expectedStatuses(t, e.config, csvPath)
	wantLines(t, r.stdout, `^Workers:\s+`+strconv.Itoa(want[lifecycle.Active])+` active, \d+ pending, `+strconv.Itoa(want[lifecycle.Terminated])+` terminated$`)
	r = e.must(0, "policy", "explain", "w-006")
	wantLines(t, r.stdout, `^Worker w-006 Tara Lindqvist <tara.lindqvist@piedpiper.com>: terminated `, `^Only active workers get access`)
	e.auditHead()
}

// TestUsageErrors checks that bad invocations fail with exit 1 and say
// why, before touching anything.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "-o", "yaml"}, `--output "yaml": want text or json`},
		{[]string{"apply", "extra"}, `unknown command "extra"`},
		{[]string{"audit", "export", "--format", "xml"}, `--format "xml": want jsonl or csv`},
		{[]string{"audit", "log", "--since", "yesterday"}, `--since "yesterday": want YYYY-MM-DD or RFC 3339`},
		{[]string{"approve"}, "accepts 1 arg(s)"},
		{[]string{"hr", "import", filepath.Join(e.dir, "missing.csv")}, "missing.csv"},
		{[]string{"--config", filepath.Join(e.dir, "nope.yaml"), "status"}, "no config file"},
		{[]string{"no-such-command"}, `unknown command "no-such-command"`},
	} {
		r := e.roster(tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("roster %s: want exit 1 and %q on stderr, got %s", strings.Join(tc.args, " "), tc.want, r)
		}
	}
	if _, err := os.Stat(filepath.Join(e.data, "roster.db")); err == nil {
		t.Errorf("a failed command created the data file")
	}
}
