package lifecycle

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

// recordsSince returns the audit records after seq.
func (env *testEnv) recordsSince(seq uint64) []audit.Record {
	env.t.Helper()
	var out []audit.Record
	if err := env.eng.Audit().Query(context.Background(), audit.Filter{AfterSeq: seq}, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		env.t.Fatal(err)
	}
	return out
}

func (env *testEnv) auditHead() uint64 {
	env.t.Helper()
	seq, _, err := env.eng.Audit().Head(context.Background())
	if err != nil {
		env.t.Fatal(err)
	}
	return seq
}

func recordTypes(rs []audit.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Type
		if r.Reason != "" {
			out[i] += ":" + r.Reason
		}
	}
	return out
}

// TestUpsertHRTransitions walks one worker through joiner (pending, then
// active at midnight in the company timezone), mover, leaver, rehire and
// deletion, checking the transition, status, version and audit records of
// every write.
func TestUpsertHRTransitions(t *testing.T) {
	la := mustLoc(t, "America/Los_Angeles")
	// 2026-01-05 begins at 08:00 UTC in Los Angeles (PST, UTC-8).
	midnight := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	env := newEnv(t, envConfig{loc: la, start: midnight.Add(-time.Second)})
	ctx := context.Background()
	base := HRRecord{ID: "w-1", Email: "a@pp.com", UserName: "a", WorkerType: "employee", Division: "Engineering",
		Team: "backend", Title: "Engineer", StartDate: "2026-01-05", Active: true}
	mod := func(f func(r *HRRecord)) HRRecord {
		r := base
		f(&r)
		return r
	}
	steps := []struct {
		name    string
		at      time.Time // zero: keep the clock
		op      string    // upsert, delete, tick
		rec     HRRecord
		tr      string
		status  Status
		version uint64
		audit   []string // record types (":reason") this step appends
	}{
		{name: "new worker before the start date is a pending joiner", op: "upsert", rec: base,
			tr: Joiner, status: Pending, version: 1, audit: []string{"hr.upsert", "worker.transition:joiner"}},
		{name: "tick one second before midnight changes nothing", op: "tick", status: Pending, version: 1},
		{name: "tick at midnight in Los Angeles starts the joiner", at: midnight, op: "tick",
			tr: Joiner, status: Active, version: 1, audit: []string{"worker.transition:joiner"}},
		{name: "identical upsert: no version bump, no audit", op: "upsert", rec: base, status: Active, version: 1},
		{name: "e-mail change: new version, no transition", at: midnight.Add(time.Hour), op: "upsert",
			rec: mod(func(r *HRRecord) { r.Email = "a2@pp.com" }), status: Active, version: 2, audit: []string{"hr.upsert"}},
		{name: "team change is a mover", at: midnight.Add(2 * time.Hour), op: "upsert",
			rec: mod(func(r *HRRecord) { r.Email, r.Team = "a2@pp.com", "frontend" }), tr: Mover, status: Active, version: 3,
			audit: []string{"hr.upsert", "worker.transition:mover"}},
		{name: "custom attribute change is a mover", at: midnight.Add(3 * time.Hour), op: "upsert",
			rec: mod(func(r *HRRecord) {
				r.Email, r.Team, r.Custom = "a2@pp.com", "frontend", map[string]string{"level": "L5"}
			}), tr: Mover, status: Active, version: 4, audit: []string{"hr.upsert", "worker.transition:mover"}},
		{name: "active=false is a leaver", at: midnight.Add(4 * time.Hour), op: "upsert",
			rec: mod(func(r *HRRecord) {
				r.Email, r.Team, r.Custom, r.Active = "a2@pp.com", "frontend", map[string]string{"level": "L5"}, false
			}), tr: Leaver, status: Terminated, version: 5, audit: []string{"hr.upsert", "worker.transition:leaver"}},
		{name: "active again is a rehire", at: midnight.Add(5 * time.Hour), op: "upsert",
			rec: mod(func(r *HRRecord) {
				r.Email, r.Team, r.Custom = "a2@pp.com", "frontend", map[string]string{"level": "L5"}
			}),
			tr: Rehire, status: Active, version: 6, audit: []string{"hr.upsert", "worker.transition:rehire"}},
		{name: "deleted in HR is a leaver", at: midnight.Add(6 * time.Hour), op: "delete",
			tr: Leaver, status: Terminated, version: 7, audit: []string{"hr.delete", "worker.transition:leaver"}},
		{name: "deleting again changes nothing", op: "delete", status: Terminated, version: 7},
		{name: "sent again after deletion is a rehire", at: midnight.Add(7 * time.Hour), op: "upsert",
			rec: mod(func(r *HRRecord) {
				r.Email, r.Team, r.Custom = "a2@pp.com", "frontend", map[string]string{"level": "L5"}
			}),
			tr: Rehire, status: Active, version: 8, audit: []string{"hr.upsert", "worker.transition:rehire"}},
	}
	var created time.Time
	for _, s := range steps {
		if !s.at.IsZero() {
			env.clock.Set(s.at)
		}
		before := env.auditHead()
		var (
			w   *Worker
			tr  string
			err error
		)
		switch s.op {
		case "upsert":
			w, tr, err = env.eng.UpsertHR(ctx, "test-hr", s.rec)
		case "delete":
			w, tr, err = env.eng.DeleteHR(ctx, "test-hr", "w-1")
		case "tick":
			var trs map[connectors.WorkerID]string
			trs, err = env.eng.Tick(ctx, "scheduler")
			tr = trs["w-1"]
			if len(trs) > 1 {
				t.Errorf("%s: tick transitions %v", s.name, trs)
			}
			if err == nil {
				w, err = env.eng.Worker(ctx, "w-1")
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if tr != s.tr || w.Status != s.status || w.Version != s.version {
			t.Errorf("%s: transition %q, status %s, version %d; want %q, %s, %d", s.name, tr, w.Status, w.Version, s.tr, s.status, s.version)
		}
		stored, err := env.eng.Worker(ctx, "w-1")
		if err != nil {
			t.Fatal(err)
		}
		if stored.Status != w.Status || stored.Version != w.Version {
			t.Errorf("%s: stored status %s v%d, returned %s v%d", s.name, stored.Status, stored.Version, w.Status, w.Version)
		}
		if stored.ID != "w-1" {
			t.Errorf("%s: id %q", s.name, stored.ID)
		}
		if created.IsZero() {
			created = stored.CreatedAt
		} else if !stored.CreatedAt.Equal(created) {
			t.Errorf("%s: CreatedAt changed from %s to %s (identity must be kept)", s.name, created, stored.CreatedAt)
		}
		rs := env.recordsSince(before)
		if got := recordTypes(rs); !slices.Equal(got, s.audit) {
			t.Errorf("%s: audit records %q, want %q", s.name, got, s.audit)
		}
		for _, r := range rs {
			if r.Worker != "w-1" || r.Actor == "" {
				t.Errorf("%s: audit record %+v: want worker w-1 and an actor", s.name, r)
			}
		}
		switch s.tr {
		case Mover:
			if !stored.MovedAt.Equal(env.clock.Now()) {
				t.Errorf("%s: MovedAt %s, want %s", s.name, stored.MovedAt, env.clock.Now())
			}
		case Leaver:
			if !stored.TerminatedAt.Equal(env.clock.Now()) {
				t.Errorf("%s: TerminatedAt %s, want now", s.name, stored.TerminatedAt)
			}
		case Rehire:
			if !stored.TerminatedAt.IsZero() || !stored.MovedAt.IsZero() || stored.Deleted {
				t.Errorf("%s: rehire kept TerminatedAt %s / MovedAt %s / Deleted %v", s.name, stored.TerminatedAt, stored.MovedAt, stored.Deleted)
			}
		}
	}
	found := false
	for _, r := range env.recordsSince(0) {
		if r.Type == "hr.upsert" && r.Details["version"] == "6" {
			found = true
			if r.Details["changed"] != "active" || r.Details["status"] != "active" {
				t.Errorf("rehire hr.upsert details %v, want changed=active status=active", r.Details)
			}
		}
	}
	if !found {
		t.Error("no hr.upsert record of version 6")
	}
	env.verifyAudit()
}

// TestPendingDayBoundary plans a future joiner on both sides of midnight
// in the company timezone, without a Tick in between: the plan follows
// the clock.
func TestPendingDayBoundary(t *testing.T) {
	la := mustLoc(t, "America/Los_Angeles")
	midnight := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	env := newEnv(t, envConfig{loc: la, start: midnight.Add(-time.Nanosecond)})
	w, tr := env.upsert(HRRecord{ID: "w-1", Email: "a@pp.com", WorkerType: "employee", StartDate: "2026-01-05", Active: true})
	if tr != Joiner || w.Status != Pending {
		t.Fatalf("upsert: %s %s, want joiner pending", tr, w.Status)
	}
	if p := env.plan(); !p.Empty() || p.Managed != 1 {
		t.Fatalf("before midnight in LA: plan %q, managed %d; want empty, 1", stepTexts(p), p.Managed)
	}
	env.clock.Set(midnight)
	want := []string{"chat w-1 create_account account joiner", "chat w-1 grant channel/general joiner"}
	if got := stepTexts(env.plan()); !slices.Equal(got, want) {
		t.Fatalf("at midnight in LA: plan %q, want %q", got, want)
	}
	// The same record in UTC would have started eight hours earlier.
	if st := EffectiveStatus(&w.HR, false, midnight.Add(-time.Hour), time.UTC); st != Active {
		t.Errorf("UTC status an hour before LA midnight = %s, want active", st)
	}
}

// TestEndDateLeaver: a contract that ends on 2026-01-09 in Los Angeles
// ends at 08:00 UTC on the 10th; Tick makes the worker a leaver.
func TestEndDateLeaver(t *testing.T) {
	la := mustLoc(t, "America/Los_Angeles")
	end := time.Date(2026, 1, 10, 8, 0, 0, 0, time.UTC)
	env := newEnv(t, envConfig{loc: la, start: end.Add(-time.Second)})
	ctx := context.Background()
	env.upsert(HRRecord{ID: "w-1", Email: "a@pp.com", WorkerType: "contractor", StartDate: "2025-06-01", EndDate: "2026-01-09", Active: true})
	env.upsert(HRRecord{ID: "w-2", Email: "b@pp.com", WorkerType: "employee", StartDate: "2025-06-01", Active: true})
	if trs, err := env.eng.Tick(ctx, "scheduler"); err != nil || len(trs) != 0 {
		t.Fatalf("tick on the last day: %v %v, want nothing", trs, err)
	}
	env.clock.Set(end)
	before := env.auditHead()
	trs, err := env.eng.Tick(ctx, "scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 1 || trs["w-1"] != Leaver {
		t.Fatalf("tick after the end date: %v, want w-1 leaver", trs)
	}
	w, err := env.eng.Worker(ctx, "w-1")
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != Terminated || !w.TerminatedAt.Equal(end) || w.Transition != Leaver {
		t.Errorf("worker %+v, want terminated at %s with transition leaver", w, end)
	}
	rs := env.recordsSince(before)
	if len(rs) != 1 || rs[0].Type != "worker.transition" || rs[0].Reason != Leaver || rs[0].Actor != "scheduler" {
		t.Errorf("audit %+v, want one worker.transition leaver by scheduler", rs)
	}
	if trs, _ := env.eng.Tick(ctx, "scheduler"); len(trs) != 0 {
		t.Errorf("second tick: %v, want nothing", trs)
	}
}

func TestUpsertHRErrors(t *testing.T) {
	env := newEnv(t, envConfig{})
	ctx := context.Background()
	tests := []struct {
		name string
		rec  HRRecord
	}{
		{"empty id", HRRecord{ID: " ", Active: true}},
		{"bad start date", HRRecord{ID: "w-1", StartDate: "2026-13-01", Active: true}},
		{"bad end date", HRRecord{ID: "w-1", EndDate: "01/02/2026", Active: true}},
		{"bad worker type", HRRecord{ID: "w-1", WorkerType: "robot", Active: true}},
	}
	for _, tc := range tests {
		if _, _, err := env.eng.UpsertHR(ctx, "test", tc.rec); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: err %v, want ErrInvalidRecord", tc.name, err)
		}
	}
	if _, _, err := env.eng.DeleteHR(ctx, "test", "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete unknown: %v, want ErrNotFound", err)
	}
	if _, err := env.eng.Worker(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("worker unknown: %v, want ErrNotFound", err)
	}
	if n := env.auditHead(); n != 0 {
		t.Errorf("rejected writes left %d audit records", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := env.eng.UpsertHR(cctx, "test", HRRecord{ID: "w-1", Active: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled upsert: %v", err)
	}
}

func TestFindWorker(t *testing.T) {
	env := newEnv(t, envConfig{})
	env.importCompany()
	ctx := context.Background()
	for key, want := range map[string]connectors.WorkerID{"w-002": "w-002", "GILFOYLE@pp.com": "w-002", "Dinesh": "w-003"} {
		w, err := env.eng.FindWorker(ctx, key)
		if err != nil || w.ID != want {
			t.Errorf("FindWorker(%q) = %v, %v; want %s", key, w, err, want)
		}
	}
	if _, err := env.eng.FindWorker(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindWorker(nobody) err %v", err)
	}
	ws, err := env.eng.Workers(ctx)
	if err != nil || len(ws) != 5 || !slices.IsSortedFunc(ws, func(a, b *Worker) int { return strings.Compare(string(a.ID), string(b.ID)) }) {
		t.Errorf("Workers: %d, %v, want 5 sorted", len(ws), err)
	}
}

func TestPolicyWorkerAndPerson(t *testing.T) {
	byID := map[connectors.WorkerID]*Worker{}
	for _, r := range company() {
		byID[r.ID] = &Worker{ID: r.ID, HR: r}
	}
	// A cycle in the manager chain must not loop.
	byID["w-001"].HR.Manager = "w-003"
	pw := PolicyWorker(byID["w-003"], byID, time.UTC)
	want := []string{"w-002", "gilfoyle@pp.com", "w-001", "richard@pp.com"}
	if !slices.Equal(pw.ManagerChain, want) {
		t.Errorf("manager chain %q, want %q", pw.ManagerChain, want)
	}
	if pw.StartDate != time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC) || !pw.EndDate.IsZero() {
		t.Errorf("dates %s / %s", pw.StartDate, pw.EndDate)
	}
	p := Person(byID["w-003"], byID)
	if p.Manager != "gilfoyle@pp.com" || p.Worker != "w-003" || p.Email != "dinesh@pp.com" {
		t.Errorf("person %+v", p)
	}
}

// TestApplyFlow imports a company, applies, and checks the apps hold
// exactly what the policy says, that a second run plans nothing, that a
// plan applied twice changes nothing more, and the audit trail.
func TestApplyFlow(t *testing.T) {
	env := newEnv(t, envConfig{})
	ctx := context.Background()
	env.importCompany()
	p, rep := env.apply()
	if p.Empty() || rep.Done != len(p.Steps) || rep.Skipped != 0 {
		t.Fatalf("apply: %d steps, report %+v", len(p.Steps), rep)
	}
	for _, s := range p.Steps {
		if s.Action.Reason != Joiner {
			t.Errorf("%s: reason %s, want joiner", stepText(s), s.Action.Reason)
		}
		if s.Action.Person.Worker == "w-005" {
			t.Errorf("pending worker planned: %s", stepText(s))
		}
	}
	if got, want := env.holdings(), env.wantHoldings(); !equalHoldings(got, want) {
		t.Fatalf("holdings after apply:\n got %v\nwant %v", got, want)
	}
	// Spot checks of the policy's effect.
	h := env.holdings()
	if h["w-001"]["gh"] != "account#admin team/engineering#member team/platform#member" ||
		h["w-002"]["gh"] != "account#member team/backend#maintainer team/engineering#member" ||
		h["w-003"]["gh"] != "account#member team/engineering#member team/frontend#member team/infra#member" ||
		h["w-004"]["chat"] != "account channel/general channel/sales" || h["w-004"]["gh"] != "" || h["w-005"] != nil {
		t.Errorf("holdings %v", h)
	}
	for _, w := range mustWorkers(t, env) {
		want := ""
		if w.ID == "w-005" {
			want = Joiner // still pending
		}
		if w.Transition != want {
			t.Errorf("%s: transition %q after apply, want %q", w.ID, w.Transition, want)
		}
	}

	p2, resumed, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Empty() || len(p2.Deferred) != 0 || len(p2.Orphans) != 0 || resumed.Done != 0 {
		t.Fatalf("second prepare: %q deferred %d orphans %d resumed %+v; want nothing", stepTexts(p2), len(p2.Deferred), len(p2.Orphans), resumed)
	}
	if p2.Managed != 5 {
		t.Errorf("managed %d, want 5", p2.Managed)
	}

	// The same plan applied again (as a new plan) is a no-op in the apps.
	before := env.changes()
	again := *p
	again.ID = ""
	rep2, err := env.eng.ApplyPlan(ctx, &again, ApplyOptions{Actor: "test"})
	if err != nil || rep2.Done != len(p.Steps) || len(rep2.Failed) != 0 {
		t.Fatalf("apply again: %+v %v", rep2, err)
	}
	if after := env.changes(); !equalCounts(before, after) {
		t.Errorf("applying the plan twice changed the apps: %v -> %v", before, after)
	}
	if again.ID == "" || again.ID == p.ID {
		t.Errorf("plan ids %q and %q", p.ID, again.ID)
	}

	env.verifyAudit()
	env.checkIntentOutcome()
	var applied, outcomes int
	for _, r := range env.auditRecords() {
		switch r.Type {
		case "plan.applied":
			applied++
		case "action.outcome":
			outcomes++
			if r.Outcome != "ok" || r.Details["attempts"] != "1" {
				t.Errorf("outcome %+v, want ok after 1 attempt", r)
			}
		}
	}
	if applied != 2 || outcomes != 2*len(p.Steps) {
		t.Errorf("%d plan.applied and %d outcomes, want 2 and %d", applied, outcomes, 2*len(p.Steps))
	}
	st, err := env.eng.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outbox != 0 || st.Workers[Active] != 4 || st.Workers[Pending] != 1 || len(st.PendingPlans) != 0 ||
		st.AuditRecords != env.auditHead() || st.LastApply.IsZero() || st.Transitions[Joiner] != 1 {
		t.Errorf("status %+v", st)
	}
	// An empty plan applies to an empty report.
	if rep, err := env.eng.ApplyPlan(ctx, p2, ApplyOptions{Actor: "test"}); err != nil || rep.Done != 0 {
		t.Errorf("empty plan: %+v %v", rep, err)
	}
}

func mustWorkers(t *testing.T, env *testEnv) []*Worker {
	t.Helper()
	ws, err := env.eng.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func equalHoldings(a, b map[connectors.WorkerID]map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, m := range a {
		n, ok := b[k]
		if !ok || len(m) != len(n) {
			return false
		}
		for app, v := range m {
			if n[app] != v {
				return false
			}
		}
	}
	return true
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// workerSteps returns the plan's steps of one worker as text.
func workerSteps(p *Plan, id connectors.WorkerID) []string {
	var out []string
	for _, s := range p.Steps {
		if s.Action.Person.Worker == id {
			out = append(out, stepText(s))
		}
	}
	return out
}

// TestLifecycleFlow carries workers through mover (role change, grace,
// grace 0), exception expiry, leaver and rehire against the memory apps.
func TestLifecycleFlow(t *testing.T) {
	env := newEnv(t, envConfig{})
	ctx := context.Background()
	env.importCompany()
	env.apply()

	step := func(name string, want []string, id connectors.WorkerID) *Plan {
		t.Helper()
		p, _ := env.apply()
		if got := workerSteps(p, id); !slices.Equal(got, want) {
			t.Fatalf("%s: steps\n got %q\nwant %q", name, got, want)
		}
		if n := len(p.Steps); n != len(want) {
			t.Fatalf("%s: %d steps in all, want %d: %q", name, n, len(want), stepTexts(p))
		}
		return p
	}

	// Dinesh becomes the frontend lead: a role change on his team.
	r := company()[2]
	r.Title = "Frontend Lead"
	if _, tr := env.upsert(r); tr != Mover {
		t.Fatalf("title change: %q, want mover", tr)
	}
	step("promotion", []string{"gh w-003 grant team/frontend#maintainer mover from member"}, "w-003")

	// Then he moves to Sales: chat access at once, oncall (grace 0) at
	// once, the rest after the engineer role's 48h grace.
	env.clock.Advance(time.Hour)
	movedAt := env.clock.Now()
	r.Division, r.Team, r.Title = "Sales", "", "Account Executive"
	if _, tr := env.upsert(r); tr != Mover {
		t.Fatalf("division change: %q, want mover", tr)
	}
	p := step("move to sales", []string{
		"chat w-003 grant channel/sales mover",
		"chat w-003 revoke usergroup/oncall mover",
	}, "w-003")
	var deferred []string
	for _, d := range p.Deferred {
		deferred = append(deferred, d.Action.App+" "+d.Action.Entitlement.String()+" "+d.Until.Sub(movedAt).String())
	}
	wantDeferred := []string{"chat usergroup/engineers 48h0m0s", "gh team/engineering#member 48h0m0s", "gh team/frontend#maintainer 48h0m0s"}
	if !slices.Equal(deferred, wantDeferred) {
		t.Fatalf("deferred %q, want %q", deferred, wantDeferred)
	}
	if w, _ := env.eng.Worker(ctx, "w-003"); w.Transition != Mover {
		t.Errorf("transition %q while removals wait, want mover", w.Transition)
	}
	env.clock.Advance(47 * time.Hour)
	if p := env.plan(); !p.Empty() || len(p.Deferred) != 3 {
		t.Fatalf("47h after the move: %q, %d deferred", stepTexts(p), len(p.Deferred))
	}
	env.clock.Advance(time.Hour)
	step("grace over", []string{
		"chat w-003 revoke usergroup/engineers mover",
		"gh w-003 revoke team/engineering#member mover",
		"gh w-003 revoke team/frontend#maintainer mover",
	}, "w-003")
	if w, _ := env.eng.Worker(ctx, "w-003"); w.Transition != "" {
		t.Errorf("transition %q after the grace, want none", w.Transition)
	}
	// The exception (team/infra) still holds, so the GitHub account stays.
	if h := env.holdings()["w-003"]["gh"]; h != "account#member team/infra#member" {
		t.Errorf("gh after the move: %q", h)
	}

	// The exception expires at the end of 2026-02-01 (UTC here).
	env.clock.Set(time.Date(2026, 2, 1, 23, 59, 0, 0, time.UTC))
	if p := env.plan(); !p.Empty() {
		t.Fatalf("on the expiry day: %q", stepTexts(p))
	}
	env.clock.Set(time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC))
	p = env.plan()
	if got := workerSteps(p, "w-003"); len(got) != 2 || got[1] != "gh w-003 revoke team/infra#member exception_expired" ||
		!strings.HasPrefix(got[0], "gh w-003 suspend_account account ") {
		t.Fatalf("after expiry: %q", got)
	}
	env.apply()

	// Jared leaves: suspended first, then his grants revoked.
	env.clock.Advance(time.Hour)
	j := company()[3]
	j.Active = false
	if _, tr := env.upsert(j); tr != Leaver {
		t.Fatalf("leaver: %q", tr)
	}
	step("leaver", []string{
		"chat w-004 suspend_account account leaver",
		"chat w-004 revoke channel/general leaver",
		"chat w-004 revoke channel/sales leaver",
	}, "w-004")
	if h := env.holdings()["w-004"]["chat"]; h != "account (suspended)" {
		t.Errorf("leaver holdings %q", h)
	}

	// And comes back: the same identity, the account restored.
	env.clock.Advance(24 * time.Hour)
	j.Active = true
	if w, tr := env.upsert(j); tr != Rehire || w.ID != "w-004" {
		t.Fatalf("rehire: %q %s", tr, w.ID)
	}
	step("rehire", []string{
		"chat w-004 restore_account account rehire",
		"chat w-004 grant channel/general rehire",
		"chat w-004 grant channel/sales rehire",
	}, "w-004")

	// The future joiner starts on 2026-03-01.
	env.clock.Set(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	p = env.plan()
	if got := workerSteps(p, "w-005"); len(got) == 0 || got[0] != "chat w-005 create_account account joiner" && got[0] != "gh w-005 create_account account#member joiner" {
		t.Fatalf("start day: %q", got)
	}
	env.apply()

	if got, want := env.holdings(), env.wantHoldings(); !equalHoldingsActive(got, want) {
		t.Errorf("final holdings\n got %v\nwant %v", got, want)
	}
	if p := env.plan(); !p.Empty() {
		t.Errorf("final plan not empty: %q", stepTexts(p))
	}
	env.verifyAudit()
	env.checkIntentOutcome()
}

// equalHoldingsActive compares holdings ignoring suspended accounts
// without grants (what is left of access that was removed).
func equalHoldingsActive(got, want map[connectors.WorkerID]map[string]string) bool {
	clean := map[connectors.WorkerID]map[string]string{}
	for w, m := range got {
		for app, v := range m {
			if strings.HasSuffix(v, "(suspended)") {
				continue
			}
			if clean[w] == nil {
				clean[w] = map[string]string{}
			}
			clean[w][app] = v
		}
	}
	for w, m := range want {
		if len(m) == 0 && clean[w] == nil {
			clean[w] = map[string]string{}
		}
	}
	return equalHoldings(clean, want)
}

// TestRehireWithFutureStart: a leaver rehired with a start date in the
// future waits as pending and, on the start day, gets the account
// restored as a rehire (not as drift or a joiner).
func TestRehireWithFutureStart(t *testing.T) {
	env := newEnv(t, envConfig{})
	env.importCompany()
	env.apply()
	j := company()[3]
	j.Active = false
	env.upsert(j)
	env.apply()

	env.clock.Advance(24 * time.Hour)
	j.Active, j.StartDate = true, "2026-02-01"
	if w, tr := env.upsert(j); tr != Rehire || w.Status != Pending {
		t.Fatalf("rehire: %q %s, want rehire pending", tr, w.Status)
	}
	if p, _ := env.apply(); !p.Empty() {
		t.Fatalf("pending rehire planned %q", stepTexts(p))
	}
	env.clock.Set(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	want := []string{
		"chat w-004 restore_account account rehire",
		"chat w-004 grant channel/general rehire",
		"chat w-004 grant channel/sales rehire",
	}
	p, _ := env.apply()
	if got := workerSteps(p, "w-004"); !slices.Equal(got, want) {
		t.Fatalf("start day of the rehire:\n got %q\nwant %q", got, want)
	}
}

// TestSettleKeepsLaterTransitions: a worker who becomes a joiner after a
// plan was computed is not marked done by applying that plan.
func TestSettleKeepsLaterTransitions(t *testing.T) {
	env := newEnv(t, envConfig{})
	ctx := context.Background()
	env.importCompany()
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(time.Minute)
	env.upsert(HRRecord{ID: "w-010", Email: "new@pp.com", WorkerType: "employee", Division: "Sales", Active: true})
	if _, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	w, err := env.eng.Worker(ctx, "w-010")
	if err != nil {
		t.Fatal(err)
	}
	if w.Transition != Joiner {
		t.Fatalf("transition of the later joiner = %q, want joiner", w.Transition)
	}
	want := []string{"chat w-010 create_account account joiner", "chat w-010 grant channel/general joiner", "chat w-010 grant channel/sales joiner"}
	if got := stepTexts(env.plan()); !slices.Equal(got, want) {
		t.Errorf("next plan %q, want %q", got, want)
	}
}
