package lifecycle

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
)

var t0 = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

func ent(s string) connectors.Entitlement {
	e, err := connectors.ParseEntitlement(s)
	if err != nil {
		panic(err)
	}
	return e
}

func ents(ss ...string) []connectors.Entitlement {
	out := make([]connectors.Entitlement, len(ss))
	for i, s := range ss {
		out[i] = ent(s)
	}
	return out
}

// desired builds Desired values from "app:entitlement" texts.
func desired(ss ...string) []Desired {
	out := make([]Desired, 0, len(ss))
	for _, s := range ss {
		app, e, _ := strings.Cut(s, ":")
		out = append(out, Desired{App: app, Entitlement: ent(e), Why: "role test"})
	}
	return out
}

// ledgerOf builds a ledger from "app:entitlement" texts granted at since.
func ledgerOf(since time.Time, grace time.Duration, ss ...string) Ledger {
	l := Ledger{}
	for _, s := range ss {
		app, es, _ := strings.Cut(s, ":")
		e := ent(es)
		if l[app] == nil {
			l[app] = map[connectors.EntitlementKey]LedgerEntry{}
		}
		l[app][e.Key()] = LedgerEntry{Entitlement: e, Since: since, Grace: grace, Why: "role test"}
	}
	return l
}

type pw struct {
	id         string
	status     Status
	transition string
	movedAt    time.Time
	termAt     time.Time
	manager    string
	desired    []Desired
	expired    []Desired
	ledger     Ledger
}

func (p pw) build() PlanWorker {
	id := connectors.WorkerID(p.id)
	w := &Worker{ID: id, Status: p.status, Transition: p.transition, MovedAt: p.movedAt, TerminatedAt: p.termAt,
		HR: HRRecord{ID: id, Email: p.id + "@pp.com", Active: p.status != Terminated}}
	return PlanWorker{Worker: w, Person: connectors.Person{Worker: id, Email: p.id + "@pp.com", Manager: p.manager},
		Desired: p.desired, Expired: p.expired, Ledger: p.ledger}
}

func acct(worker string, suspended bool, role string, es ...string) connectors.AccountState {
	return connectors.AccountState{ID: connectors.AccountID("acc-" + worker), Worker: connectors.WorkerID(worker),
		Email: worker + "@pp.com", Suspended: suspended, Role: role, Entitlements: ents(es...)}
}

func state(app string, accs ...connectors.AccountState) *connectors.State {
	return &connectors.State{App: app, Accounts: accs}
}

func TestCompute(t *testing.T) {
	moved := t0.Add(-time.Hour)
	long := t0.Add(-30 * 24 * time.Hour)
	tests := []struct {
		name      string
		now       time.Time // t0 when zero
		workers   []pw
		actual    []*connectors.State
		retention time.Duration
		transfers map[string]bool
		want      []string
		deferred  []string // "app worker kind entitlement until"
		orphans   []string // "app account"
		managed   int
	}{
		{
			name: "joiner gets an account, then grants",
			workers: []pw{{id: "w1", status: Active, transition: Joiner,
				desired: desired("gh:account#member", "gh:team/backend#member", "gh:team/eng#member", "chat:account", "chat:channel/general")}},
			want: []string{
				"chat w1 create_account account joiner",
				"chat w1 grant channel/general joiner",
				"gh w1 create_account account#member joiner",
				"gh w1 grant team/backend#member joiner",
				"gh w1 grant team/eng#member joiner",
			},
			managed: 1,
		},
		{
			name:    "pending worker gets nothing",
			workers: []pw{{id: "w1", status: Pending, transition: Joiner, desired: desired("gh:account", "gh:team/eng#member")}},
			managed: 1,
		},
		{
			name: "mover: additions at once, removals deferred for the grace",
			workers: []pw{{id: "w1", status: Active, transition: Mover, movedAt: moved,
				desired: desired("gh:account#member", "gh:team/eng#member", "gh:team/frontend#member"),
				ledger:  ledgerOf(long, 48*time.Hour, "gh:account#member", "gh:team/eng#member", "gh:team/backend#member")}},
			actual:   []*connectors.State{state("gh", acct("w1", false, "member", "team/backend#member", "team/eng#member"))},
			want:     []string{"gh w1 grant team/frontend#member mover"},
			deferred: []string{"gh w1 revoke team/backend#member " + moved.Add(48*time.Hour).Format(time.RFC3339)},
			managed:  1,
		},
		{
			name: "mover: removal once the grace has passed",
			now:  moved.Add(48 * time.Hour),
			workers: []pw{{id: "w1", status: Active, transition: Mover, movedAt: moved,
				desired: desired("gh:account#member", "gh:team/eng#member", "gh:team/frontend#member"),
				ledger:  ledgerOf(long, 48*time.Hour, "gh:account#member", "gh:team/eng#member", "gh:team/backend#member")}},
			actual:  []*connectors.State{state("gh", acct("w1", false, "member", "team/backend#member", "team/eng#member"))},
			want:    []string{"gh w1 grant team/frontend#member mover", "gh w1 revoke team/backend#member mover"},
			managed: 1,
		},
		{
			name: "mover: grace 0 revokes at once",
			workers: []pw{{id: "w1", status: Active, transition: Mover, movedAt: moved,
				desired: desired("chat:account", "chat:channel/general"),
				ledger:  ledgerOf(long, 0, "chat:account", "chat:channel/general", "chat:usergroup/oncall")}},
			actual:  []*connectors.State{state("chat", acct("w1", false, "", "channel/general", "usergroup/oncall"))},
			want:    []string{"chat w1 revoke usergroup/oncall mover"},
			managed: 1,
		},
		{
			name: "mover out of every role in an app: grants and the account wait for the grace",
			workers: []pw{{id: "w1", status: Active, transition: Mover, movedAt: moved,
				desired: desired("chat:account"),
				ledger:  ledgerOf(long, 48*time.Hour, "gh:account#member", "gh:team/eng#member", "chat:account")}},
			actual: []*connectors.State{state("gh", acct("w1", false, "member", "team/eng#member")), state("chat", acct("w1", false, ""))},
			deferred: []string{
				"gh w1 revoke team/eng#member " + moved.Add(48*time.Hour).Format(time.RFC3339),
			},
			managed: 1,
		},
		{
			name: "mover out of every role in an app, grace passed: revoke and suspend",
			now:  moved.Add(49 * time.Hour),
			workers: []pw{{id: "w1", status: Active, transition: Mover, movedAt: moved,
				desired: desired("chat:account"),
				ledger:  ledgerOf(long, 48*time.Hour, "gh:account#member", "gh:team/eng#member", "chat:account")}},
			actual: []*connectors.State{state("gh", acct("w1", false, "member", "team/eng#member")), state("chat", acct("w1", false, ""))},
			want: []string{
				"gh w1 suspend_account account mover",
				"gh w1 revoke team/eng#member mover",
			},
			managed: 1,
		},
		{
			name: "role change member -> maintainer is a grant from the old role",
			workers: []pw{{id: "w1", status: Active, transition: Mover, movedAt: moved,
				desired: desired("gh:account#member", "gh:team/backend#maintainer"),
				ledger:  ledgerOf(long, 0, "gh:account#member", "gh:team/backend#member")}},
			actual:  []*connectors.State{state("gh", acct("w1", false, "member", "team/backend#member"))},
			want:    []string{"gh w1 grant team/backend#maintainer mover from member"},
			managed: 1,
		},
		{
			name: "account role change member -> admin",
			workers: []pw{{id: "w1", status: Active,
				desired: desired("gh:account#admin"),
				ledger:  ledgerOf(long, 0, "gh:account#member")}},
			actual:  []*connectors.State{state("gh", acct("w1", false, "member"))},
			want:    []string{"gh w1 grant account#admin policy_change from member"},
			managed: 1,
		},
		{
			name: "role changed by hand in the app is drift",
			workers: []pw{{id: "w1", status: Active,
				desired: desired("gh:account#member", "gh:team/backend#maintainer"),
				ledger:  ledgerOf(long, 0, "gh:account#member", "gh:team/backend#maintainer")}},
			actual:  []*connectors.State{state("gh", acct("w1", false, "member", "team/backend#member"))},
			want:    []string{"gh w1 grant team/backend#maintainer drift from member"},
			managed: 1,
		},
		{
			name: "leaver: suspend first, then revoke everything",
			workers: []pw{{id: "w1", status: Terminated, transition: Leaver, termAt: t0.Add(-time.Minute),
				ledger: ledgerOf(long, 0, "gh:account", "gh:team/eng#member", "gh:team/backend#member", "chat:account")}},
			actual: []*connectors.State{
				state("chat", acct("w1", false, "")),
				state("gh", acct("w1", false, "member", "team/backend#member", "team/eng#member")),
			},
			want: []string{
				"chat w1 suspend_account account leaver",
				"gh w1 suspend_account account leaver",
				"gh w1 revoke team/backend#member leaver",
				"gh w1 revoke team/eng#member leaver",
			},
			managed: 1,
		},
		{
			name:      "leaver with data transfer to the manager",
			transfers: map[string]bool{"gh": true},
			workers:   []pw{{id: "w1", status: Terminated, transition: Leaver, termAt: t0, manager: "boss@pp.com"}},
			actual:    []*connectors.State{state("gh", acct("w1", false, "member", "team/eng#member"))},
			want: []string{
				"gh w1 suspend_account account leaver",
				"gh w1 revoke team/eng#member leaver",
				"gh w1 transfer_data account leaver",
			},
			managed: 1,
		},
		{
			name:      "leaver within retention keeps the suspended account",
			retention: 30 * 24 * time.Hour,
			workers:   []pw{{id: "w1", status: Terminated, termAt: t0.Add(-29 * 24 * time.Hour)}},
			actual:    []*connectors.State{state("gh", acct("w1", true, "member"))},
			managed:   0,
		},
		{
			name:      "leaver after retention: delete the account",
			retention: 30 * 24 * time.Hour,
			workers:   []pw{{id: "w1", status: Terminated, termAt: t0.Add(-30 * 24 * time.Hour)}},
			actual:    []*connectors.State{state("gh", acct("w1", true, "member"))},
			want:      []string{"gh w1 delete_account account leaver"},
			managed:   1,
		},
		{
			name:    "terminated worker with nothing left is not managed",
			workers: []pw{{id: "w1", status: Terminated, termAt: t0.Add(-time.Hour)}},
			actual:  []*connectors.State{state("gh", acct("w1", true, "member"))},
		},
		{
			name: "rehire: restore the account, grant again",
			workers: []pw{{id: "w1", status: Active, transition: Rehire,
				desired: desired("gh:account#member", "gh:team/eng#member"),
				ledger:  ledgerOf(long, 0, "gh:account#member")}},
			actual: []*connectors.State{state("gh", acct("w1", true, "member"))},
			want: []string{
				"gh w1 restore_account account rehire",
				"gh w1 grant team/eng#member rehire",
			},
			managed: 1,
		},
		{
			name: "drift: held outside the ledger is revoked, granted but gone is granted again",
			workers: []pw{{id: "w1", status: Active,
				desired: desired("gh:account#member", "gh:team/eng#member"),
				ledger:  ledgerOf(long, 0, "gh:account#member", "gh:team/eng#member")}},
			actual: []*connectors.State{state("gh", acct("w1", false, "member", "team/rogue#member"))},
			want: []string{
				"gh w1 grant team/eng#member drift",
				"gh w1 revoke team/rogue#member drift",
			},
			managed: 1,
		},
		{
			name: "exception expired",
			workers: []pw{{id: "w1", status: Active,
				desired: desired("gh:account#member"),
				expired: desired("gh:team/infra#member"),
				ledger: func() Ledger {
					l := ledgerOf(long, 0, "gh:account#member", "gh:team/infra#member")
					e := l["gh"][ent("team/infra").Key()]
					e.Exception = true
					l["gh"][ent("team/infra").Key()] = e
					return l
				}()}},
			actual:  []*connectors.State{state("gh", acct("w1", false, "member", "team/infra#member"))},
			want:    []string{"gh w1 revoke team/infra#member exception_expired"},
			managed: 1,
		},
		{
			name: "policy change adds and removes",
			workers: []pw{{id: "w1", status: Active,
				desired: desired("gh:account#member", "gh:team/new#member"),
				ledger:  ledgerOf(long, 48*time.Hour, "gh:account#member", "gh:team/old#member")}},
			actual: []*connectors.State{state("gh", acct("w1", false, "member", "team/old#member"))},
			want: []string{
				"gh w1 grant team/new#member policy_change",
				"gh w1 revoke team/old#member policy_change",
			},
			managed: 1,
		},
		{
			name: "no role grants access any more: an account Roster created is suspended",
			workers: []pw{{id: "w1", status: Active, desired: desired("chat:account"),
				ledger: ledgerOf(long, 0, "gh:account#member", "chat:account")}},
			actual:  []*connectors.State{state("gh", acct("w1", false, "member")), state("chat", acct("w1", false, ""))},
			want:    []string{"gh w1 suspend_account account policy_change"},
			managed: 1,
		},
		{
			name:    "an account Roster did not create is left alone; its grants are drift",
			workers: []pw{{id: "w1", status: Active, desired: desired("chat:account"), ledger: ledgerOf(long, 0, "chat:account")}},
			actual: []*connectors.State{
				state("gh", acct("w1", false, "member", "team/side#member")),
				state("chat", acct("w1", false, "")),
			},
			want:    []string{"gh w1 revoke team/side#member drift"},
			managed: 1,
		},
		{
			name:    "found by e-mail when the app stores no worker id",
			workers: []pw{{id: "w1", status: Active, transition: Joiner, desired: desired("gh:account#member", "gh:team/eng#member")}},
			actual: []*connectors.State{state("gh", connectors.AccountState{ID: "x1", Email: "W1@PP.com", Role: "member",
				Entitlements: ents("team/eng#member")})},
			managed: 1,
		},
		{
			// A new hire given the address of someone who left must not
			// get their account (and its history): they get their own.
			name:    "an e-mail match linked to another worker is not the worker's account",
			workers: []pw{{id: "w1", status: Active, transition: Joiner, desired: desired("gh:account#member")}},
			actual:  []*connectors.State{state("gh", connectors.AccountState{ID: "x1", Worker: "w-before", Email: "w1@pp.com", Suspended: true})},
			want:    []string{"gh w1 create_account account#member joiner"},
			orphans: []string{"gh x1"},
			managed: 1,
		},
		{
			name:    "orphan accounts are reported, not changed",
			workers: []pw{{id: "w1", status: Active, desired: desired("gh:account#member"), ledger: ledgerOf(long, 0, "gh:account#member")}},
			actual: []*connectors.State{state("gh",
				acct("w1", false, "member"),
				connectors.AccountState{ID: "ghost", Email: "ghost@pp.com", Entitlements: ents("team/eng#member")},
				connectors.AccountState{ID: "old", Worker: "w-gone"},
			)},
			orphans: []string{"gh ghost", "gh old"},
			managed: 1,
		},
		{
			name: "managed counts active, pending and leavers with work",
			workers: []pw{
				{id: "a", status: Active, desired: desired("gh:account#member"), ledger: ledgerOf(long, 0, "gh:account#member")},
				{id: "b", status: Pending},
				{id: "c", status: Terminated, termAt: long},
				{id: "d", status: Terminated, termAt: t0, transition: Leaver},
			},
			actual:  []*connectors.State{state("gh", acct("a", false, "member"), acct("c", true, "member"), acct("d", false, "member"))},
			want:    []string{"gh d suspend_account account leaver"},
			managed: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			in := Input{Now: now, Apps: []string{"chat", "gh"}, Actual: map[string]*connectors.State{},
				Retention: tc.retention, Transfers: tc.transfers}
			for _, w := range tc.workers {
				in.Workers = append(in.Workers, w.build())
			}
			for _, st := range tc.actual {
				in.Actual[st.App] = st
			}
			p := Compute(in)
			if got := stepTexts(p); !slices.Equal(got, tc.want) {
				t.Errorf("steps:\n got %q\nwant %q", got, tc.want)
			}
			var deferred []string
			for _, d := range p.Deferred {
				a := d.Action
				deferred = append(deferred, strings.Join([]string{a.App, string(a.Person.Worker), string(a.Kind), a.Entitlement.String(), d.Until.Format(time.RFC3339)}, " "))
			}
			if !slices.Equal(deferred, tc.deferred) {
				t.Errorf("deferred:\n got %q\nwant %q", deferred, tc.deferred)
			}
			var orphans []string
			for _, o := range p.Orphans {
				orphans = append(orphans, o.App+" "+string(o.Account.ID))
			}
			if !slices.Equal(orphans, tc.orphans) {
				t.Errorf("orphans: got %q, want %q", orphans, tc.orphans)
			}
			if p.Managed != tc.managed {
				t.Errorf("managed = %d, want %d", p.Managed, tc.managed)
			}
			for _, s := range p.Steps {
				if s.ID != StepID(s.Action) {
					t.Errorf("step %s: id %s, want StepID %s", stepText(s), s.ID, StepID(s.Action))
				}
			}
		})
	}
}

// TestComputeLeaverOrder checks, for a leaver with many grants in several
// apps, that in each app the suspension comes before every revocation.
func TestComputeLeaverOrder(t *testing.T) {
	in := Input{Now: t0, Apps: []string{"a", "b", "c"}, Actual: map[string]*connectors.State{}}
	in.Workers = []PlanWorker{pw{id: "w1", status: Terminated, termAt: t0}.build()}
	for _, app := range in.Apps {
		in.Actual[app] = state(app, acct("w1", false, "", "team/a", "team/b", "team/c", "usergroup/x"))
	}
	p := Compute(in)
	seenRevoke := map[string]bool{}
	suspended := map[string]bool{}
	for _, s := range p.Steps {
		a := s.Action
		if a.Reason != Leaver {
			t.Errorf("%s: reason %s, want leaver", stepText(s), a.Reason)
		}
		switch a.Kind {
		case connectors.SuspendAccount:
			if seenRevoke[a.App] {
				t.Errorf("%s: suspension after a revocation", a.App)
			}
			suspended[a.App] = true
		case connectors.Revoke:
			if !suspended[a.App] {
				t.Errorf("%s: revocation before the suspension", stepText(s))
			}
			seenRevoke[a.App] = true
		}
	}
	if got := p.Summary(); got.Suspend != 3 || got.Revoke != 12 {
		t.Errorf("summary %+v, want 3 suspensions and 12 revocations", got)
	}
}

// bigInput is a varied input for the determinism tests.
func bigInput(r *rand.Rand) Input {
	apps := []string{"a", "b", "c"}
	in := Input{Now: t0, Apps: apps, Actual: map[string]*connectors.State{}, Retention: 24 * time.Hour,
		Transfers: map[string]bool{"b": true}}
	kinds := []string{"team/x", "team/y", "team/z", "group/g1", "group/g2", "channel/c"}
	statuses := []Status{Active, Active, Active, Pending, Terminated}
	for app := range slices.Values(apps) {
		in.Actual[app] = &connectors.State{App: app}
	}
	for i := range 60 {
		id := "w" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		p := pw{id: id, status: statuses[i%len(statuses)], termAt: t0.Add(-time.Duration(i) * time.Hour), manager: "boss@pp.com"}
		if i%7 == 0 {
			p.transition, p.movedAt = Mover, t0.Add(-time.Hour)
		}
		p.ledger = Ledger{}
		for _, app := range apps {
			if r.IntN(3) > 0 {
				p.desired = append(p.desired, Desired{App: app, Entitlement: connectors.Account})
			}
			var held []string
			for _, k := range kinds {
				if r.IntN(2) == 0 {
					p.desired = append(p.desired, Desired{App: app, Entitlement: ent(k)})
				}
				if r.IntN(2) == 0 {
					held = append(held, k)
				}
				if r.IntN(3) == 0 {
					if p.ledger[app] == nil {
						p.ledger[app] = map[connectors.EntitlementKey]LedgerEntry{}
					}
					p.ledger[app][ent(k).Key()] = LedgerEntry{Entitlement: ent(k), Since: t0.Add(-48 * time.Hour), Grace: time.Duration(r.IntN(3)) * time.Hour}
				}
			}
			if r.IntN(4) > 0 {
				a := acct(id, r.IntN(5) == 0, "")
				a.Entitlements = ents(held...)
				connectors.SortEntitlements(a.Entitlements)
				in.Actual[app].Accounts = append(in.Actual[app].Accounts, a)
			}
		}
		in.Workers = append(in.Workers, p.build())
	}
	for i := range 5 {
		in.Actual["a"].Accounts = append(in.Actual["a"].Accounts, connectors.AccountState{ID: connectors.AccountID("orphan-" + string(rune('0'+i)))})
	}
	return in
}

// TestComputeDeterministic computes the same input many times, and with
// its workers, apps, accounts, entitlements and desired grants shuffled:
// the plan must not change.
func TestComputeDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ref := Compute(bigInput(rand.New(rand.NewPCG(7, 7))))
	if len(ref.Steps) < 50 || len(ref.Deferred) == 0 || len(ref.Orphans) == 0 {
		t.Fatalf("input too small to be interesting: %d steps, %d deferred, %d orphans", len(ref.Steps), len(ref.Deferred), len(ref.Orphans))
	}
	for i := range 20 {
		in := bigInput(rand.New(rand.NewPCG(7, 7)))
		if i > 0 {
			r.Shuffle(len(in.Workers), func(a, b int) { in.Workers[a], in.Workers[b] = in.Workers[b], in.Workers[a] })
			r.Shuffle(len(in.Apps), func(a, b int) { in.Apps[a], in.Apps[b] = in.Apps[b], in.Apps[a] })
			for _, st := range in.Actual {
				r.Shuffle(len(st.Accounts), func(a, b int) { st.Accounts[a], st.Accounts[b] = st.Accounts[b], st.Accounts[a] })
				for _, acc := range st.Accounts {
					r.Shuffle(len(acc.Entitlements), func(a, b int) {
						acc.Entitlements[a], acc.Entitlements[b] = acc.Entitlements[b], acc.Entitlements[a]
					})
				}
			}
			for _, w := range in.Workers {
				r.Shuffle(len(w.Desired), func(a, b int) { w.Desired[a], w.Desired[b] = w.Desired[b], w.Desired[a] })
			}
		}
		got := Compute(in)
		if !reflect.DeepEqual(got, ref) {
			gs, rs := stepTexts(got), stepTexts(ref)
			t.Fatalf("run %d: plan differs\n got %d steps %q…\nwant %d steps %q…\n fingerprints %s %s",
				i, len(gs), gs[:min(5, len(gs))], len(rs), rs[:min(5, len(rs))], got.Fingerprint(), ref.Fingerprint())
		}
	}
}

func TestPlanSummaryAndFingerprint(t *testing.T) {
	in := bigInput(rand.New(rand.NewPCG(3, 4)))
	p := Compute(in)
	s := p.Summary()
	total := s.Create + s.Grant + s.Change + s.Revoke + s.Suspend + s.Restore + s.Transfer + s.Delete
	if total != len(p.Steps) {
		t.Errorf("summary counts %d steps, plan has %d", total, len(p.Steps))
	}
	if s.Deferred != len(p.Deferred) || s.Orphans != len(p.Orphans) {
		t.Errorf("summary deferred/orphans %d/%d, want %d/%d", s.Deferred, s.Orphans, len(p.Deferred), len(p.Orphans))
	}
	q := Compute(in)
	q.ID, q.CreatedAt = "other", q.CreatedAt.Add(time.Hour)
	if p.Fingerprint() != q.Fingerprint() {
		t.Error("fingerprint depends on id or time")
	}
	q.Steps = q.Steps[1:]
	if p.Fingerprint() == q.Fingerprint() {
		t.Error("fingerprint ignores a removed step")
	}
	if p.Empty() || !(&Plan{}).Empty() {
		t.Error("Empty is wrong")
	}
}

func TestCheckSafety(t *testing.T) {
	step := func(kind connectors.ActionKind, w string) Step {
		return Step{Action: connectors.Action{Kind: kind, App: "gh", Person: connectors.Person{Worker: connectors.WorkerID(w)}}}
	}
	p := &Plan{Managed: 10, Steps: []Step{
		step(connectors.SuspendAccount, "a"), step(connectors.Revoke, "a"), step(connectors.Revoke, "a"),
		step(connectors.Revoke, "b"), step(connectors.Revoke, "c"), step(connectors.Grant, "d"), step(connectors.Grant, "e"),
	}}
	tests := []struct {
		name string
		s    Safety
		want int
	}{
		{"no limits", noLimits, 0},
		{"zero value blocks every destructive kind present", Safety{}, 4},
		{"revoke max 3 counts distinct workers", Safety{Suspend: Threshold{-1, -1}, Revoke: Threshold{3, -1}, Delete: Threshold{0, 0}}, 0},
		{"revoke max 2", Safety{Suspend: Threshold{-1, -1}, Revoke: Threshold{2, -1}, Delete: Threshold{-1, -1}}, 1},
		{"revoke 30% of 10", Safety{Suspend: Threshold{-1, -1}, Revoke: Threshold{-1, 30}, Delete: Threshold{-1, -1}}, 0},
		{"revoke 29% of 10", Safety{Suspend: Threshold{-1, -1}, Revoke: Threshold{-1, 29}, Delete: Threshold{-1, -1}}, 1},
		{"both limits exceeded", Safety{Suspend: Threshold{0, 5}, Revoke: Threshold{-1, -1}, Delete: Threshold{-1, -1}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckSafety(p, tc.s)
			if len(got) != tc.want {
				t.Errorf("CheckSafety = %q, want %d sentences", got, tc.want)
			}
		})
	}
}

// TestComputeDuplicateAccounts: of two accounts carrying the same worker
// id, the one with the smaller id is the worker's and the other an
// orphan, in whatever order the app lists them.
func TestComputeDuplicateAccounts(t *testing.T) {
	for _, order := range [][]string{{"b-2", "a-1"}, {"a-1", "b-2"}} {
		st := &connectors.State{App: "gh"}
		for _, id := range order {
			st.Accounts = append(st.Accounts, connectors.AccountState{ID: connectors.AccountID(id), Worker: "w1"})
		}
		in := Input{Now: t0, Apps: []string{"gh"}, Actual: map[string]*connectors.State{"gh": st},
			Workers: []PlanWorker{pw{id: "w1", status: Terminated, termAt: t0}.build()}}
		p := Compute(in)
		if len(p.Steps) != 1 || p.Steps[0].Action.Account != "a-1" {
			t.Errorf("order %v: steps %q (account %q), want one suspension of a-1", order, stepTexts(p), p.Steps[0].Action.Account)
		}
		if len(p.Orphans) != 1 || p.Orphans[0].Account.ID != "b-2" {
			t.Errorf("order %v: orphans %+v, want b-2", order, p.Orphans)
		}
	}
}

// TestPlannerReadsLedgerOnlyWhenNeeded: a worker whose apps already match
// needs no ledger; one with a difference reads it once; a read error is
// reported.
func TestPlannerReadsLedgerOnlyWhenNeeded(t *testing.T) {
	loads := map[string]int{}
	mk := func(id string, fail bool, ds ...string) PlanWorker {
		w := pw{id: id, status: Active, desired: desired(ds...)}.build()
		w.Ledger = nil
		w.loadLedger = func() (Ledger, error) {
			loads[id]++
			if fail {
				return nil, errors.New("disk on fire")
			}
			return ledgerOf(t0.Add(-time.Hour), 0, "gh:account#member", "chat:account"), nil
		}
		return w
	}
	in := Input{Now: t0, Apps: []string{"chat", "gh"}, Actual: map[string]*connectors.State{
		"gh":   state("gh", acct("same", false, "member", "team/a#member"), acct("diff", false, "member", "team/a#member")),
		"chat": state("chat", acct("same", false, "", "channel/x"), acct("diff", false, "", "channel/x", "channel/y")),
	}}
	pl := newPlanner(in)
	for _, w := range []PlanWorker{
		mk("diff", false, "chat:account", "chat:channel/x", "gh:account#member"),
		mk("same", false, "chat:account", "chat:channel/x", "gh:account#member", "gh:team/a#member"),
	} {
		pl.add(&w)
	}
	p := pl.finish()
	want := []string{"chat diff revoke channel/y drift", "gh diff revoke team/a#member drift"}
	if got := stepTexts(p); !slices.Equal(got, want) || pl.err != nil {
		t.Fatalf("steps %q (err %v), want %q", got, pl.err, want)
	}
	if loads["same"] != 0 || loads["diff"] != 1 {
		t.Errorf("ledger loads %v, want none for the matching worker and one for the other", loads)
	}
	pl = newPlanner(in)
	w := mk("diff", true, "chat:account")
	pl.add(&w)
	if pl.err == nil {
		t.Error("ledger read error not reported")
	}
}
