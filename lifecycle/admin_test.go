package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
)

// slowGH makes the gh app take a little time per action, so that the
// server loop's work and an admin's overlap.
var slowGH = memory.Config{Kinds: ghKinds, Latency: memory.Duration(2 * time.Millisecond)}

// TestApplyCheckedWhileServing: an apply through the running engine
// carries out the reviewed plan while the loop carries out HR changes,
// refuses a plan that changed, and repeats nothing.
func TestApplyCheckedWhileServing(t *testing.T) {
	env := newEnv(t, envConfig{gh: slowGH})
	ctx := context.Background()
	env.importCompany()
	env.apply()
	stop := serving(t, env, RunOptions{TickInterval: 5 * time.Millisecond})
	defer stop()

	// Changes the loop is not told about: only a full plan finds them.
	for _, i := range []int{2, 3} {
		r := company()[i]
		r.Title = "Backend Lead"
		r.Division, r.Team = "Engineering", "data"
		env.upsert(r)
	}
	reviewed := env.plan()
	if reviewed.Empty() {
		t.Fatal("nothing to apply")
	}

	// A stale review is refused and changes nothing.
	before := env.changes()
	res, err := env.eng.ApplyChecked(ctx, "api:ops", "0000000000000000")
	var pc *PlanChangedError
	if !errors.Is(err, ErrPlanChanged) || !errors.As(err, &pc) || pc.Current != reviewed.Fingerprint() || res.Report != nil {
		t.Fatalf("stale fingerprint: %v, report %+v", err, res)
	}
	if after := env.changes(); !equalCounts(before, after) {
		t.Fatalf("a refused apply changed the apps: %v -> %v", before, after)
	}

	res, err = env.eng.ApplyChecked(ctx, "api:ops", reviewed.Fingerprint())
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if res.Report == nil || res.Report.Done != len(reviewed.Steps) || len(res.Report.Failed) != 0 || res.Plan.ID == "" || res.Report.PlanID != res.Plan.ID {
		t.Errorf("apply result: plan %s, report %+v; want %d done", res.Plan.ID, res.Report, len(reviewed.Steps))
	}

	// HR changes arrive through the loop while an admin applies: each
	// change is carried out once, by one or the other.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 5 {
			id := connectors.WorkerID(fmt.Sprintf("w-2%02d", i))
			w, tr := env.upsert(HRRecord{ID: id, Email: string(id) + "@pp.com", WorkerType: "employee", Division: "Engineering", Team: "backend", Active: true})
			env.eng.Notify(w.ID, tr)
		}
	}()
	for range 3 {
		if res, err := env.eng.ApplyChecked(ctx, "api:ops", ""); err != nil || (res.Report != nil && len(res.Report.Failed) > 0) {
			t.Fatalf("apply during HR changes: %v %+v", err, res.Report)
		}
	}
	wg.Wait()
	waitFor(t, "the joiners provisioned", func() bool {
		return strings.Contains(env.holdings()["w-204"]["gh"], "team/backend#member")
	})
	waitFor(t, "outbox empty", func() bool { items, _ := env.eng.Outbox(ctx); return len(items) == 0 })
	stop()
	if p := env.plan(); !p.Empty() {
		t.Errorf("plan after the apply: %q", stepTexts(p))
	}
	noDuplicateChanges(t, env)
	env.verifyAudit()
	env.checkIntentOutcome()

	st, err := env.eng.Status(ctx)
	if err != nil || st.LastReconcile.IsZero() || len(st.Unreadable) != 0 {
		t.Errorf("status after apply: last reconcile %v, unreadable %v, %v", st.LastReconcile, st.Unreadable, err)
	}
}

// TestApproveAndRejectWhileServing: a pending plan is approved through
// the running engine while HR changes flow; another is rejected and can
// no longer be approved. The loop's full reconcile keeps an identical
// pending plan rather than replacing it.
func TestApproveAndRejectWhileServing(t *testing.T) {
	safety := Safety{Suspend: Threshold{Max: 1, MaxPercent: -1}, Revoke: Threshold{Max: -1, MaxPercent: -1}, Delete: Threshold{Max: -1, MaxPercent: -1}}
	env := newEnv(t, envConfig{gh: slowGH, safety: &safety})
	ctx := context.Background()
	env.importCompany()
	env.apply()
	for _, i := range []int{1, 2, 3} {
		r := company()[i]
		r.Active = false
		env.upsert(r)
	}
	_, err := env.eng.ApplyChecked(ctx, "api:ops", "")
	var ar *ApprovalRequiredError
	if !errors.As(err, &ar) {
		t.Fatalf("apply over the threshold: %v", err)
	}

	// Full reconciles come and go: the same changes keep their id.
	stop := serving(t, env, RunOptions{TickInterval: 5 * time.Millisecond, ReconcileInterval: 5 * time.Millisecond})
	defer stop()
	time.Sleep(50 * time.Millisecond)
	saved, err := env.eng.SavedPlans(ctx)
	if err != nil || len(saved) != 1 || saved[0].Plan.ID != ar.PlanID || saved[0].Status != PlanPending {
		t.Fatalf("saved plans after full reconciles: %v %v", savedIDs(saved), err)
	}
	stop()
	// (A full reconcile that runs while a new joiner waits for the loop
	// plans the joiner too, and that plan does replace the pending one:
	// the approval below runs with the full reconcile at start only, in a
	// restarted engine.)
	env.eng = env.newEngine()
	stop = serving(t, env, RunOptions{TickInterval: 5 * time.Millisecond})
	defer stop()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w, tr := env.upsert(HRRecord{ID: "w-300", Email: "new@pp.com", WorkerType: "employee", Division: "Sales", Active: true})
		env.eng.Notify(w.ID, tr)
	}()
	res, err := env.eng.Approve(ctx, "api:boss", ar.PlanID)
	if err != nil || res.Report == nil || len(res.Report.Failed) != 0 || res.Report.Done == 0 {
		t.Fatalf("approve: %v %+v", err, res)
	}
	wg.Wait()
	for _, id := range []connectors.WorkerID{"w-002", "w-003", "w-004"} {
		if v := env.holdings()[id]["chat"]; !strings.Contains(v, "suspended") {
			t.Errorf("%s after approval: chat %q", id, v)
		}
	}
	waitFor(t, "the joiner provisioned", func() bool { return strings.Contains(env.holdings()["w-300"]["chat"], "channel/sales") })
	waitFor(t, "outbox empty", func() bool { items, _ := env.eng.Outbox(ctx); return len(items) == 0 })
	stop()

	// A second gated plan, rejected: it never runs.
	r := company()[0]
	r.Active = false
	env.upsert(r)
	env.upsert(HRRecord{ID: "w-300", Email: "new@pp.com", WorkerType: "employee", Division: "Sales", Active: false})
	_, err = env.eng.ApplyChecked(ctx, "api:ops", "")
	if !errors.As(err, &ar) {
		t.Fatalf("second gated apply: %v", err)
	}
	before := env.changes()
	sp, err := env.eng.Reject(ctx, "api:boss", ar.PlanID, "HR feed glitch, ticket HR-12")
	if err != nil || sp.Status != PlanRejected || sp.DecidedBy != "api:boss" {
		t.Fatalf("reject: %+v %v", sp, err)
	}
	if _, err := env.eng.Approve(ctx, "api:boss", ar.PlanID); err == nil || !strings.Contains(err.Error(), "rejected, not pending") {
		t.Errorf("approving a rejected plan: %v", err)
	}
	if _, err := env.eng.Reject(ctx, "api:boss", ar.PlanID, ""); err == nil || !strings.Contains(err.Error(), "not pending") {
		t.Errorf("rejecting twice: %v", err)
	}
	if _, err := env.eng.Reject(ctx, "api:boss", "p-nope", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("rejecting an unknown plan: %v", err)
	}
	if after := env.changes(); !equalCounts(before, after) {
		t.Errorf("a rejected plan changed the apps: %v -> %v", before, after)
	}
	var rejected int
	for _, rec := range env.auditRecords() {
		if rec.Type == "plan.rejected" {
			rejected++
			if rec.PlanID != ar.PlanID || rec.Actor != "api:boss" || rec.Details["reason"] != "HR feed glitch, ticket HR-12" {
				t.Errorf("plan.rejected record %+v", rec)
			}
		}
		if rec.Type == "plan.superseded" {
			t.Errorf("a full reconcile superseded a pending plan with an identical one: %+v", rec)
		}
	}
	if rejected != 1 {
		t.Errorf("%d plan.rejected records, want 1", rejected)
	}
	noDuplicateChanges(t, env)
	env.verifyAudit()
	env.checkIntentOutcome()
}

func savedIDs(sps []*SavedPlan) []string {
	var out []string
	for _, sp := range sps {
		out = append(out, sp.Plan.ID+" "+sp.Status)
	}
	return out
}

// TestLoadPolicyWhileServing: a new policy is audited once and used by
// the next plan; loading the same one again records nothing.
func TestLoadPolicyWhileServing(t *testing.T) {
	env := newEnv(t, envConfig{})
	env.importCompany()
	env.apply()
	stop := serving(t, env, RunOptions{TickInterval: 5 * time.Millisecond})
	defer stop()

	count := func() int {
		n := 0
		for _, r := range env.auditRecords() {
			if r.Type == "policy.load" {
				n++
			}
		}
		return n
	}
	before := count()
	changed, err := env.eng.LoadPolicy("api:ops", env.pol)
	if err != nil || changed || count() != before {
		t.Fatalf("same policy: changed %v, %v, %d policy.load records (was %d)", changed, err, count(), before)
	}
	newer := loadPolicy(t, strings.Replace(testPolicy, "chat: [channel/sales]", "chat: [channel/sales, channel/deals]", 1), catalogOf(env.eng.apps["gh"], env.eng.apps["chat"]), env.loc)
	changed, err = env.eng.LoadPolicy("api:ops", newer)
	if err != nil || !changed || count() != before+1 || env.eng.Policy().Hash() != newer.Hash() {
		t.Fatalf("new policy: changed %v, %v, %d policy.load records (was %d)", changed, err, count(), before)
	}
	p := env.plan()
	if got := stepTexts(p); !slices.Equal(got, []string{"chat w-004 grant channel/deals policy_change"}) {
		t.Errorf("plan after the reload: %q", got)
	}
	stop()
	env.verifyAudit()
}
