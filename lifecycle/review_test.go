package lifecycle

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// flaky wraps an app that can be switched off: Snapshot and Apply fail
// with a transient error while down.
type flaky struct {
	connectors.Connector
	down atomic.Bool
}

func (f *flaky) Snapshot(ctx context.Context) (*connectors.State, error) {
	if f.down.Load() {
		return nil, connectors.Errorf(connectors.Transient, "snapshot", "%s is down", f.Name())
	}
	return f.Connector.Snapshot(ctx)
}

func (f *flaky) Apply(ctx context.Context, a connectors.Action) error {
	if f.down.Load() {
		return connectors.Errorf(connectors.Transient, "apply", "%s is down", f.Name())
	}
	return f.Connector.Apply(ctx, a)
}

// withFlakyGH rebuilds the engine with gh behind a switch.
func withFlakyGH(env *testEnv) *flaky {
	f := &flaky{Connector: env.apps["gh"]}
	env.opts.Apps = []connectors.Connector{env.apps["chat"], f}
	env.eng = env.newEngine()
	return f
}

func TestUnreadableAppDoesNotBlockOthers(t *testing.T) {
	env := newEnv(t, envConfig{})
	env.importCompany()
	env.apply()
	gh := withFlakyGH(env)
	gh.down.Store(true)

	r := company()[2] // an engineer leaves
	r.Active = false
	env.upsert(r)
	ctx := context.Background()
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatalf("prepare with gh down: %v", err)
	}
	if msg := p.Unreadable["gh"]; !strings.Contains(msg, "gh is down") || len(p.Unreadable) != 1 {
		t.Fatalf("unreadable = %v, want gh", p.Unreadable)
	}
	for _, st := range p.Steps {
		if st.Action.App == "gh" {
			t.Errorf("a step for the unreadable app: %s", stepText(st))
		}
	}
	if got := workerSteps(p, "w-003"); len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), "chat w-003 suspend_account") {
		t.Fatalf("the leaver is not suspended in chat while gh is down: %q", got)
	}
	rep, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"})
	if err != nil || len(rep.Failed) > 0 {
		t.Fatalf("apply: %+v %v", rep, err)
	}
	if w, _ := env.eng.Worker(ctx, "w-003"); w.Transition != Leaver {
		t.Errorf("transition %q after a partial apply, want leaver (gh still to do)", w.Transition)
	}
	gh.down.Store(false)
	p, _ = env.apply()
	if got := workerSteps(p, "w-003"); !strings.Contains(strings.Join(got, "\n"), "gh w-003 suspend_account") {
		t.Errorf("gh back: the leaver's gh suspension is not planned: %q", got)
	}
	if w, _ := env.eng.Worker(ctx, "w-003"); w.Transition != "" {
		t.Errorf("transition %q after the full apply, want none", w.Transition)
	}
}

func TestApproveWithUnreadableAppStaysPending(t *testing.T) {
	safety := Safety{Suspend: Threshold{Max: 0, MaxPercent: -1}, Revoke: Threshold{Max: -1, MaxPercent: -1}, Delete: Threshold{Max: -1, MaxPercent: -1}}
	env := newEnv(t, envConfig{safety: &safety})
	env.importCompany()
	env.apply()
	gh := withFlakyGH(env)
	r := company()[2]
	r.Active = false
	env.upsert(r)
	ctx := context.Background()
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"}); !errors.Is(err, ErrApprovalRequired) {
		t.Fatalf("apply: %v", err)
	}
	gh.down.Store(true)
	if _, err := env.eng.Approve(ctx, "boss", p.ID); err == nil || !strings.Contains(err.Error(), "cannot read the state of gh") {
		t.Fatalf("approve with gh down: %v", err)
	}
	if sp, _ := env.eng.SavedPlan(ctx, p.ID); sp.Status != PlanPending {
		t.Fatalf("plan is %s after a failed approval, want pending", sp.Status)
	}
	gh.down.Store(false)
	res, err := env.eng.Approve(ctx, "boss", p.ID)
	if err != nil || res.Report.Done != len(p.Steps) || res.Stale != 0 {
		t.Fatalf("approve with gh back: %+v %v", res, err)
	}
}

func TestApproveLeavesNewChangesOpen(t *testing.T) {
	safety := Safety{Suspend: Threshold{Max: 0, MaxPercent: -1}, Revoke: Threshold{Max: -1, MaxPercent: -1}, Delete: Threshold{Max: -1, MaxPercent: -1}}
	env := newEnv(t, envConfig{safety: &safety})
	env.importCompany()
	env.apply()
	r := company()[3]
	r.Active = false
	env.upsert(r)
	ctx := context.Background()
	p, _, _ := env.eng.Prepare(ctx, "test")
	if _, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"}); !errors.Is(err, ErrApprovalRequired) {
		t.Fatalf("apply: %v", err)
	}
	// A joiner arrives after the plan was saved: not part of what the
	// approver reviewed.
	env.clock.Advance(time.Minute)
	env.upsert(HRRecord{ID: "w-010", Email: "new@pp.com", WorkerType: "employee", Division: "Sales", Active: true})
	res, err := env.eng.Approve(ctx, "boss", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Plan.Steps {
		if st.Action.Person.Worker == "w-010" {
			t.Errorf("approval applied a change the approver did not see: %s", stepText(st))
		}
	}
	if w, _ := env.eng.Worker(ctx, "w-010"); w.Transition != Joiner {
		t.Errorf("the new joiner's transition is %q after the approval, want joiner", w.Transition)
	}
	p, _ = env.apply()
	if got := workerSteps(p, "w-010"); len(got) == 0 || !strings.Contains(got[0], "joiner") {
		t.Errorf("the joiner's steps after approval: %q, want reason joiner", got)
	}
}

func TestAccountGraceAndLaterPolicyChange(t *testing.T) {
	pol := `version: 1
roles:
  - name: engineer
    when: worker.division == "Engineering"
    grace: 48h
    grants:
      gh: [account]
      chat: [account, channel/eng]
  - name: sales
    when: worker.division == "Sales"
    grants:
      chat: [account]
`
	env := newEnv(t, envConfig{policy: pol})
	env.upsert(HRRecord{ID: "w-1", Email: "a@pp.com", WorkerType: "employee", Division: "Engineering", Active: true})
	env.apply()
	env.clock.Advance(time.Hour)
	env.upsert(HRRecord{ID: "w-1", Email: "a@pp.com", WorkerType: "employee", Division: "Sales", Active: true})
	p, _ := env.apply()
	for _, st := range p.Steps {
		if st.Action.App == "gh" {
			t.Errorf("gh account removed inside its 48h grace: %s", stepText(st))
		}
	}
	if len(p.Deferred) != 2 {
		t.Fatalf("deferred = %d, want the gh account and chat channel/eng", len(p.Deferred))
	}
	env.clock.Advance(49 * time.Hour)
	p, _ = env.apply()
	if got := strings.Join(workerSteps(p, "w-1"), "\n"); !strings.Contains(got, "gh w-1 suspend_account") || !strings.Contains(got, "mover") {
		t.Fatalf("after the grace: %q", got)
	}
	// Sixty days on, a policy change removes access: no grace, reason
	// policy_change (the move was carried out long ago).
	env.clock.Advance(60 * 24 * time.Hour)
	env.upsert(HRRecord{ID: "w-1", Email: "a@pp.com", WorkerType: "employee", Division: "Sales", Active: true, Title: "AE"})
	env.apply() // the title change is a mover with nothing to do; settles
	env.pol = loadPolicy(t, strings.Replace(pol, "chat: [account]\n", "chat: []\n", 1), catalogOf(env.apps["gh"], env.apps["chat"]), time.UTC)
	env.eng.SetPolicy(env.pol)
	p = env.plan()
	if len(p.Deferred) != 0 {
		t.Errorf("a policy change long after the move was deferred: %+v", p.Deferred)
	}
}
