package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// TestSafetyThreshold makes three leavers with a limit of one suspension:
// apply saves the plan and exits 3 without changing any app, status lists
// the pending plan, approve applies it once, and a second approval fails.
func TestSafetyThreshold(t *testing.T) {
	t.Parallel()
	e := newEnvWithData(t)
	editFile(t, e.config, "suspend: {max: 10, max_percent: 10}", "suspend: {max: 1, max_percent: 100}")
	e.must(0, "config", "check")
	e.must(0, "plan", "--detailed-exitcode")

	csvPath := filepath.Join(e.dir, "hr.csv")
	editCSV(t, csvPath, map[string]map[string]string{
		"w-006": {"active": "false"}, "w-007": {"active": "false"}, "w-008": {"active": "false"},
	})
	r := e.must(0, "hr", "import", csvPath)
	wantLines(t, r.stdout, `: 3 leavers\.$`)
	before := e.planJSON()
	leavers := map[connectors.WorkerID]bool{}
	for _, st := range before.Steps {
		if st.Action.Kind == connectors.SuspendAccount {
			leavers[st.Action.Person.Worker] = true
		}
	}
	if len(leavers) != 3 {
		t.Fatalf("the plan suspends %d workers, want 3", len(leavers))
	}
	records, head := e.auditHead()

	r = e.must(3, "apply", "--auto-approve")
	wantLines(t, r.stdout,
		`^This plan exceeds the safety thresholds:$`,
		`^  - suspend: 3 workers > max 1$`,
		`^Nothing was changed\. The plan was saved as p-\S+\.$`)
	m := regexp.MustCompile(`(?m)^Review it, then run: roster approve (p-[0-9]{8}-[0-9]{6}-[0-9a-f]{6})$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("apply did not print the plan id:\n%s", r)
	}
	id := m[1]
	if strings.Contains(r.stdout, "Apply complete") {
		t.Errorf("a gated apply reported an apply:\n%s", r.stdout)
	}
	// The apps are unchanged: the same plan, still to do.
	e.must(2, "plan", "--detailed-exitcode")
	if after := e.planJSON(); after.Fingerprint() != before.Fingerprint() {
		t.Errorf("the plan changed after a gated apply: %d steps, was %d", len(after.Steps), len(before.Steps))
	}
	// Exactly one record, the pending plan, was audited.
	if n, _ := e.auditHead(); n != records+1 {
		t.Errorf("a gated apply wrote %d audit records, want 1 (plan.pending)", n-records)
	}
	out := e.must(0, "audit", "log", "--type", "plan.pending").stdout
	if !strings.Contains(out, "plan="+id) || strings.Count(out, "\n") != 1 {
		t.Errorf("audit log --type plan.pending:\n%s", out)
	}
	// Applying again does not run it either; it saves another pending
	// plan, said in JSON too.
	r = e.must(3, "apply", "--auto-approve", "-o", "json")
	var gated struct {
		Plan            lifecycle.Plan `json:"plan"`
		PendingApproval string         `json:"pendingApproval"`
		Exceeded        []string       `json:"exceeded"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &gated); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, r.stdout)
	}
	id2 := gated.PendingApproval
	if id2 == "" || id2 == id || gated.Plan.ID != id2 || gated.Plan.Fingerprint() != before.Fingerprint() ||
		!slices.Equal(gated.Exceeded, []string{"suspend: 3 workers > max 1"}) {
		t.Errorf("apply -o json over the threshold: pending %q, exceeded %q, plan %s with %d steps",
			id2, gated.Exceeded, gated.Plan.ID, len(gated.Plan.Steps))
	}

	// The newer pending plan supersedes the older one: only it can be
	// approved, so nobody approves a stale copy of the same changes.
	r = e.must(0, "status")
	wantLines(t, r.stdout, `^Pending plans: `+regexp.QuoteMeta(id2)+` \(roster approve ID\)$`, `^Outbox:\s+0 actions waiting$`)
	out = e.must(0, "audit", "log", "--type", "plan.superseded").stdout
	if !strings.Contains(out, "plan="+id) || !strings.Contains(out, id2) {
		t.Errorf("no plan.superseded record for %s:\n%s", id, out)
	}
	r = e.must(1, "approve", id)
	if !strings.Contains(r.stderr, "superseded") {
		t.Errorf("approving a superseded plan: %s", r)
	}

	r = e.must(0, "approve", id2)
	wantLines(t, r.stdout, `^Plan `+regexp.QuoteMeta(id2)+` approved\.$`,
		`^Apply complete: \d+ done, 0 failed, 0 skipped\. \(plan `+regexp.QuoteMeta(id2)+`\)$`)
	if n := atoi(t, applyRE.FindStringSubmatch(r.stdout)[1]); n != len(before.Steps) {
		t.Errorf("approve applied %d actions, the plan had %d", n, len(before.Steps))
	}
	e.must(0, "plan", "--detailed-exitcode")
	out = e.must(0, "audit", "log", "--type", "plan.approved").stdout
	if !strings.Contains(out, "plan="+id2) {
		t.Errorf("no plan.approved record for %s:\n%s", id2, out)
	}
	out = e.must(0, "audit", "log", "--type", "action.outcome", "--worker", "w-007").stdout
	if c := strings.Count(out, "plan="+id2); c == 0 || c != strings.Count(out, "reason=leaver") || strings.Contains(out, "outcome=failed") {
		t.Errorf("w-007's leaver outcomes should all be ok and in plan %s:\n%s", id2, out)
	}

	r = e.must(1, "approve", id2)
	if !strings.Contains(r.stderr, "not pending") {
		t.Errorf("approving twice: %s", r)
	}
	r = e.must(0, "status")
	wantLines(t, r.stdout, `^Pending plans: none$`)
	r = e.must(1, "approve", "p-20990101-000000-000000")
	if !strings.Contains(r.stderr, "not found") {
		t.Errorf("approving an unknown plan: %s", r)
	}
	if _, h := e.auditHead(); h == head {
		t.Errorf("the audit head did not move")
	}
}

// Approving while an app cannot be read does nothing and says so: the
// plan stays pending, and nothing claims it was approved.
func TestApproveWhileAnAppIsDown(t *testing.T) {
	t.Parallel()
	e := newEnvWithData(t)
	editFile(t, e.config, "suspend: {max: 10, max_percent: 10}", "suspend: {max: 1, max_percent: 100}")
	csvPath := filepath.Join(e.dir, "hr.csv")
	editCSV(t, csvPath, map[string]map[string]string{"w-006": {"active": "false"}, "w-007": {"active": "false"}})
	e.must(0, "hr", "import", csvPath)
	r := e.must(3, "apply", "--auto-approve")
	m := regexp.MustCompile(`roster approve (p-\S+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no plan id:\n%s", r)
	}
	// Slack goes down.
	editFile(t, e.config, `  slack:
    type: memory
    settings:
`, `  slack:
    type: memory
    settings:
      failure_rate: 1
`)
	r = e.must(1, "approve", m[1])
	if strings.Contains(r.stdout, "approved") || !strings.Contains(r.stderr, "stays pending") {
		t.Errorf("approve with slack down:\n%s", r)
	}
	r = e.must(0, "status")
	wantLines(t, r.stdout, `^Pending plans: `+regexp.QuoteMeta(m[1]))
}
