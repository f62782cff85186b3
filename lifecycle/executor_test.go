package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
	"github.com/rosterhq/roster/policy"
)

// TestSafetyGate: a plan over the thresholds is saved, changes nothing,
// and runs only once approved, without the steps that went stale.
func TestSafetyGate(t *testing.T) {
	safety := Safety{Suspend: Threshold{Max: 1, MaxPercent: -1}, Revoke: Threshold{Max: 1, MaxPercent: -1}, Delete: Threshold{Max: -1, MaxPercent: -1}}
	env := newEnv(t, envConfig{safety: &safety})
	ctx := context.Background()
	env.importCompany()
	env.apply() // joiners only: nothing destructive

	env.clock.Advance(time.Hour)
	for _, i := range []int{1, 2, 3} {
		r := company()[i]
		r.Active = false
		env.upsert(r)
	}
	before := env.changes()
	p, _, err := env.eng.Prepare(ctx, "cli:ops")
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Summary(); s.Suspend != 5 || s.Revoke == 0 {
		t.Fatalf("leaver plan summary %+v", s)
	}
	_, err = env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "cli:ops"})
	var ar *ApprovalRequiredError
	if !errors.Is(err, ErrApprovalRequired) || !errors.As(err, &ar) {
		t.Fatalf("apply over the thresholds: %v, want *ApprovalRequiredError", err)
	}
	if ar.PlanID == "" || ar.PlanID != p.ID || len(ar.Exceeded) != 2 {
		t.Errorf("approval error %+v (plan %s)", ar, p.ID)
	}
	if !strings.Contains(err.Error(), ar.PlanID) {
		t.Errorf("error %q does not name the plan", err)
	}
	if after := env.changes(); !equalCounts(before, after) {
		t.Fatalf("the gated plan changed the apps: %v -> %v", before, after)
	}
	saved, err := env.eng.SavedPlans(ctx)
	if err != nil || len(saved) != 1 || saved[0].Status != PlanPending || saved[0].Plan.ID != p.ID ||
		saved[0].CreatedBy != "cli:ops" || len(saved[0].Plan.Steps) != len(p.Steps) {
		t.Fatalf("saved plans %+v %v", saved, err)
	}
	st, err := env.eng.Status(ctx)
	if err != nil || !slices.Equal(st.PendingPlans, []string{p.ID}) || st.Outbox != 0 {
		t.Fatalf("status %+v %v", st, err)
	}

	// Meanwhile HR takes one leaver back: their steps are stale.
	env.clock.Advance(time.Minute)
	back := company()[3]
	env.upsert(back)
	stale := len(workerSteps(p, "w-004"))

	res, err := env.eng.Approve(ctx, "cli:boss", p.ID)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	if res.Stale != stale || res.Report.Done != len(p.Steps)-stale || len(res.Report.Failed) != 0 {
		t.Errorf("approve result: stale %d (want %d), report %+v, %d steps", res.Stale, stale, res.Report, len(p.Steps))
	}
	h := env.holdings()
	for _, id := range []connectors.WorkerID{"w-002", "w-003"} {
		for app, v := range h[id] {
			if v != "account (suspended)" && v != "account#member (suspended)" {
				t.Errorf("%s %s after approval: %q", id, app, v)
			}
		}
	}
	if v := h["w-004"]["chat"]; v != "account channel/general channel/sales" {
		t.Errorf("rehired worker touched by the approval: %q", v)
	}
	var approved []audit.Record
	for _, r := range env.auditRecords() {
		if r.Type == "plan.approved" || r.Type == "plan.pending" {
			approved = append(approved, r)
		}
	}
	if len(approved) != 2 || approved[0].Type != "plan.pending" || approved[1].Actor != "cli:boss" || approved[1].PlanID != p.ID {
		t.Errorf("plan records %+v", approved)
	}
	sp, err := env.eng.SavedPlan(ctx, p.ID)
	if err != nil || sp.Status != PlanApproved || sp.DecidedBy != "cli:boss" || sp.DecidedAt.IsZero() {
		t.Errorf("saved plan after approval %+v %v", sp, err)
	}
	if _, err := env.eng.Approve(ctx, "cli:boss", p.ID); err == nil {
		t.Error("approving twice succeeded")
	}
	if _, err := env.eng.Approve(ctx, "cli:boss", "p-nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("approve unknown: %v", err)
	}
	if st, _ := env.eng.Status(ctx); len(st.PendingPlans) != 0 {
		t.Errorf("pending plans after approval: %v", st.PendingPlans)
	}
	env.verifyAudit()
	env.checkIntentOutcome()
}

// TestTransientFailures: flaky apps that fail before changing and lose
// responses after changing still converge in one apply, and no change is
// made twice.
func TestTransientFailures(t *testing.T) {
	flaky := func(seed int64) memory.Config {
		return memory.Config{FailureRate: 0.3, LostResponseRate: 0.2, Seed: seed}
	}
	env := newEnv(t, envConfig{gh: flaky(42), chat: flaky(7),
		exec: ExecutorOptions{Concurrency: 3, MaxAttempts: 40, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}})
	env.importCompany()
	p, rep := env.apply()
	perApp := map[string]int{}
	for _, s := range p.Steps {
		perApp[s.Action.App]++
	}
	if got := env.changes(); !equalCounts(got, perApp) {
		t.Errorf("effective changes %v, want exactly one per step %v", got, perApp)
	}
	if rep.Done != len(p.Steps) {
		t.Errorf("report %+v, %d steps", rep, len(p.Steps))
	}
	if got, want := env.holdings(), env.wantHoldings(); !equalHoldings(got, want) {
		t.Errorf("holdings\n got %v\nwant %v", got, want)
	}
	retried := 0
	for _, r := range env.auditRecords() {
		if r.Type == "action.outcome" && r.Details["attempts"] != "1" {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no action needed a retry: the failure injection did not work")
	}
	p2, _, err := env.eng.Prepare(context.Background(), "test")
	if err != nil || !p2.Empty() {
		t.Errorf("second prepare: %q %v", stepTexts(p2), err)
	}
	env.verifyAudit()
	env.checkIntentOutcome()
}

// TestTerminalFailure: an action the app rejects as invalid is tried once,
// recorded as failed, and the rest of that worker's chain in that app is
// skipped; other apps carry on.
func TestTerminalFailure(t *testing.T) {
	const pol = `version: 1
roles:
  - name: engineer
    when: worker.division == "Engineering"
    grants:
      gh: [account, repo/core, team/engineering, team/zeta]
      chat: [account, channel/general]
`
	cat := policy.Catalog{"gh": append(slices.Clone(ghKinds), connectors.KindSpec{Name: "repo"}), "chat": chatKinds}
	env := newEnv(t, envConfig{policy: pol, catalog: cat,
		exec: ExecutorOptions{Concurrency: 2, MaxAttempts: 10, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}})
	ctx := context.Background()
	env.importCompany()
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	engineers := []connectors.WorkerID{"w-001", "w-002", "w-003"}
	if len(rep.Failed) != len(engineers) || rep.Skipped != 2*len(engineers) || rep.Done != 3*len(engineers) {
		t.Fatalf("report done %d failed %d skipped %d; want 9, 3, 6", rep.Done, len(rep.Failed), rep.Skipped)
	}
	for _, f := range rep.Failed {
		if f.Attempts != 1 || f.Kind != "invalid" || f.Action.Entitlement.String() != "repo/core" {
			t.Errorf("failure %+v, want repo/core invalid after 1 attempt", f)
		}
	}
	outcomes := map[string]int{}
	for _, r := range env.auditRecords() {
		if r.Type != "action.outcome" {
			continue
		}
		outcomes[r.App+" "+r.Entitlement+" "+r.Outcome]++
		if r.Outcome == "failed" && (r.Details["attempts"] != "1" || r.Details["error_kind"] != "invalid" || r.Message == "") {
			t.Errorf("failed outcome record %+v", r)
		}
	}
	want := map[string]int{"gh account#member ok": 3, "gh repo/core failed": 3, "gh team/engineering#member skipped": 3, "gh team/zeta#member skipped": 3,
		"chat account ok": 3, "chat channel/general ok": 3}
	if fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
	if h := env.holdings(); h["w-002"]["gh"] != "account#member" || h["w-002"]["chat"] != "account channel/general" {
		t.Errorf("holdings %v", h)
	}
	for _, id := range engineers {
		if w, _ := env.eng.Worker(ctx, id); w.Transition != Joiner {
			t.Errorf("%s: transition %q after a failed action, want joiner kept", id, w.Transition)
		}
	}
	// The next run plans what is missing again, still as a joiner.
	wantNext := []string{"gh w-001 grant repo/core joiner", "gh w-001 grant team/engineering#member joiner", "gh w-001 grant team/zeta#member joiner"}
	if got := workerSteps(env.plan(), "w-001"); !slices.Equal(got, wantNext) {
		t.Errorf("next plan %q, want %q", got, wantNext)
	}
	env.verifyAudit()
	env.checkIntentOutcome()
}

// noDuplicateChanges fails when an app logged the same change twice.
func noDuplicateChanges(t *testing.T, env *testEnv) {
	t.Helper()
	for name, a := range env.apps {
		cs, err := a.Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, c := range cs {
			k := fmt.Sprintf("%s %s %s", c.Kind, c.Account, c.Entitlement)
			if seen[k] {
				t.Errorf("%s: change %s made twice", name, k)
			}
			seen[k] = true
		}
	}
}

// TestResumeAfterCrashBeforeExecution: the plan's actions were written to
// the outbox and the process died; a new engine finishes them once.
func TestResumeAfterCrashBeforeExecution(t *testing.T) {
	env := newEnv(t, envConfig{})
	ctx := context.Background()
	env.importCompany()
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	p.ID = "p-crash"
	if _, err := env.eng.enqueue(p, "test"); err != nil {
		t.Fatal(err)
	}
	items, err := env.eng.Outbox(ctx)
	if err != nil || len(items) != len(p.Steps) {
		t.Fatalf("outbox: %d items, %v; want %d", len(items), err, len(p.Steps))
	}
	for i, it := range items {
		if it.StepID != p.Steps[i].ID || it.PlanID != "p-crash" || it.Seq == 0 {
			t.Fatalf("outbox item %d: %+v", i, it)
		}
	}
	if n := env.changes(); n["gh"]+n["chat"] != 0 {
		t.Fatalf("enqueue changed apps: %v", n)
	}

	env.eng = env.newEngine() // restart
	p2, resumed, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Done != len(p.Steps) || !p2.Empty() {
		t.Fatalf("resume: %+v, next plan %q", resumed, stepTexts(p2))
	}
	perApp := map[string]int{}
	for _, s := range p.Steps {
		perApp[s.Action.App]++
	}
	if got := env.changes(); !equalCounts(got, perApp) {
		t.Errorf("changes %v, want %v", got, perApp)
	}
	if got, want := env.holdings(), env.wantHoldings(); !equalHoldings(got, want) {
		t.Errorf("holdings\n got %v\nwant %v", got, want)
	}
	noDuplicateChanges(t, env)
	env.verifyAudit()
	env.checkIntentOutcome()
}

// TestResumeAfterInterruptedApply: an apply interrupted half-way (the
// context ends while slow apps work) leaves the rest in the outbox; a new
// engine drains it, and every change happens exactly once.
func TestResumeAfterInterruptedApply(t *testing.T) {
	slow := memory.Config{Latency: memory.Duration(5 * time.Millisecond)}
	env := newEnv(t, envConfig{gh: slow, chat: slow,
		exec: ExecutorOptions{Concurrency: 1, MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}})
	env.importCompany()
	p, _, err := env.eng.Prepare(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // cancel once a few changes are in
		for {
			n := 0
			for _, a := range env.apps {
				cs, _ := a.Changes(context.Background())
				n += len(cs)
			}
			if n >= 3 {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	rep, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted apply: %v (report %+v), want context.Canceled", err, rep)
	}
	left, err := env.eng.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) == 0 || len(left) >= len(p.Steps) || rep.Done+len(left) != len(p.Steps) {
		t.Fatalf("after interruption: done %d, %d left of %d", rep.Done, len(left), len(p.Steps))
	}

	env.eng = env.newEngine()
	p2, resumed, err := env.eng.Prepare(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Done != len(left) || !p2.Empty() {
		t.Fatalf("resume: %+v (want %d done), next plan %q", resumed, len(left), stepTexts(p2))
	}
	perApp := map[string]int{}
	for _, s := range p.Steps {
		perApp[s.Action.App]++
	}
	if got := env.changes(); !equalCounts(got, perApp) {
		t.Errorf("changes %v, want one per step %v", got, perApp)
	}
	noDuplicateChanges(t, env)
	env.verifyAudit()
	env.checkIntentOutcome()
}

// TestLeaversFirst: when the outbox holds joiners and leavers, every
// leaver's suspension runs before any other chain in that app.
func TestLeaversFirst(t *testing.T) {
	env := newEnv(t, envConfig{exec: ExecutorOptions{Concurrency: 1, MaxAttempts: 1, BackoffBase: time.Millisecond}})
	ctx := context.Background()
	recs := company()
	for _, r := range recs[:2] {
		env.upsert(r)
	}
	env.apply()
	env.clock.Advance(time.Hour)
	for _, r := range recs[2:4] {
		env.upsert(r) // joiners
	}
	leaver := recs[0]
	leaver.Active = false
	env.upsert(leaver)
	before := env.changes()
	env.apply()
	for name, a := range env.apps {
		cs, err := a.Changes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cs = cs[before[name]:]
		if len(cs) == 0 {
			continue
		}
		if cs[0].Kind != connectors.SuspendAccount || cs[0].Worker != "w-001" {
			t.Errorf("%s: first change of the run is %s for %s, want the leaver's suspension", name, cs[0].Kind, cs[0].Worker)
		}
	}
}

func TestRetryHonoursContextAndKinds(t *testing.T) {
	env := newEnv(t, envConfig{exec: ExecutorOptions{MaxAttempts: 5, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}})
	ctx := context.Background()
	tests := []struct {
		name     string
		errs     []error
		attempts int
		ok       bool
	}{
		{"success", []error{nil}, 1, true},
		{"transient then success", []error{connectors.Errorf(connectors.Transient, "x", "boom"), nil}, 2, true},
		{"unclassified is retried", []error{errors.New("reset"), errors.New("reset"), nil}, 3, true},
		{"rate limited with retry-after", []error{&connectors.Error{Kind: connectors.RateLimited, Op: "x", RetryAfter: 3 * time.Millisecond}, nil}, 2, true},
		{"terminal is not retried", []error{connectors.Errorf(connectors.Permission, "x", "denied")}, 1, false},
		{"gives up after max attempts", []error{connectors.Errorf(connectors.Transient, "x", "boom")}, 5, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			n, err := env.eng.retryCount(ctx, func() error {
				e := tc.errs[min(calls, len(tc.errs)-1)]
				calls++
				return e
			})
			if n != tc.attempts || calls != tc.attempts || (err == nil) != tc.ok {
				t.Errorf("attempts %d (calls %d), err %v; want %d, ok=%v", n, calls, err, tc.attempts, tc.ok)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := env.eng.retryCount(cctx, func() error { return nil }); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %d %v", n, err)
	}
	for attempt := 1; attempt < 70; attempt++ {
		d := backoff(attempt, time.Millisecond, time.Second)
		if d <= 0 || d > time.Second {
			t.Fatalf("backoff(%d) = %s", attempt, d)
		}
	}
}

// TestApproveRace: of two concurrent approvals of one plan, one wins.
func TestApproveRace(t *testing.T) {
	safety := Safety{Suspend: Threshold{Max: 0, MaxPercent: -1}, Revoke: Threshold{Max: -1, MaxPercent: -1}, Delete: Threshold{Max: -1, MaxPercent: -1}}
	env := newEnv(t, envConfig{safety: &safety})
	ctx := context.Background()
	env.importCompany()
	env.apply()
	r := company()[3]
	r.Active = false
	env.upsert(r)
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"}); !errors.Is(err, ErrApprovalRequired) {
		t.Fatalf("apply: %v", err)
	}
	errs := make(chan error, 2)
	for _, who := range []string{"cli:a", "cli:b"} {
		go func() {
			_, err := env.eng.Approve(ctx, who, p.ID)
			errs <- err
		}()
	}
	var failed int
	for range 2 {
		if err := <-errs; err != nil {
			failed++
			if !strings.Contains(err.Error(), "not pending") {
				t.Errorf("losing approval: %v", err)
			}
		}
	}
	approvals := 0
	for _, r := range env.auditRecords() {
		if r.Type == "plan.approved" {
			approvals++
		}
	}
	if failed != 1 || approvals != 1 {
		t.Errorf("%d approvals failed and %d plan.approved records; want 1 and 1", failed, approvals)
	}
	env.checkIntentOutcome()
}

// TestApproveKeepsMoverInGrace: approving a mover's gated plan does not
// mark the move done while removals wait for the grace.
func TestApproveKeepsMoverInGrace(t *testing.T) {
	safety := Safety{Suspend: Threshold{Max: -1, MaxPercent: -1}, Revoke: Threshold{Max: 0, MaxPercent: -1}, Delete: Threshold{Max: -1, MaxPercent: -1}}
	env := newEnv(t, envConfig{safety: &safety})
	ctx := context.Background()
	env.importCompany()
	env.apply()
	env.clock.Advance(time.Hour)
	r := company()[2]
	r.Division, r.Team = "Sales", ""
	env.upsert(r)
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"}); !errors.Is(err, ErrApprovalRequired) {
		t.Fatalf("apply: %v (plan %q)", err, stepTexts(p))
	}
	res, err := env.eng.Approve(ctx, "cli:boss", p.ID)
	if err != nil || res.Report.Done != len(p.Steps) {
		t.Fatalf("approve: %+v %v", res, err)
	}
	if len(res.Plan.Deferred) == 0 {
		t.Error("approved plan lost the deferred removals")
	}
	if w, _ := env.eng.Worker(ctx, "w-003"); w.Transition != Mover {
		t.Errorf("transition %q after approval while removals wait, want mover", w.Transition)
	}
}

// An app that asks to wait longer than maxRetryAfter gets no more
// attempts in this run: the action fails (rate_limited) for the next run
// to retry, and the command does not hang.
func TestRetryGivesUpOnLongRetryAfter(t *testing.T) {
	env := newEnv(t, envConfig{exec: ExecutorOptions{Concurrency: 1, MaxAttempts: 5, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}})
	calls := 0
	long := &connectors.Error{Kind: connectors.RateLimited, Op: "invite", RetryAfter: time.Hour, Err: errors.New("over the cap")}
	start := time.Now()
	n, err := env.eng.retryCount(t.Context(), func() error { calls++; return long })
	if calls != 1 || n != 1 || !errors.Is(err, long) {
		t.Fatalf("%d calls, %d attempts, err %v; want 1 call returning the rate limit", calls, n, err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("waited %v", time.Since(start))
	}
	short := &connectors.Error{Kind: connectors.RateLimited, Op: "grant", RetryAfter: 10 * time.Millisecond, Err: errors.New("slow down")}
	calls = 0
	if _, err := env.eng.retryCount(t.Context(), func() error {
		calls++
		if calls < 3 {
			return short
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("a short Retry-After: %d calls, err %v; want success on the 3rd", calls, err)
	}
}
