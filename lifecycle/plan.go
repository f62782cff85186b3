package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// Plan is an ordered list of changes with the reason for each: a plain
// value that can be printed, tested, saved, approved and applied. It is
// made by Compute, which does no I/O.
type Plan struct {
	ID         string    `json:"id,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	PolicyHash string    `json:"policyHash,omitempty"`
	// Steps in execution order: by worker, then app, then phase
	// (suspend, restore, create, grant, revoke, transfer, delete).
	Steps []Step `json:"steps"`
	// Deferred are removals waiting for a mover's grace period to end.
	Deferred []Deferred `json:"deferred,omitempty"`
	// Orphans are accounts in an app that belong to no known worker. They
	// are reported, never changed.
	Orphans []Orphan `json:"orphans,omitempty"`
	// Managed is the number of workers the plan was computed for that are
	// active or pending, or leaving in this plan: the base of the safety
	// thresholds' percentages.
	Managed int `json:"managed"`
}

// Step is one action of a plan.
type Step struct {
	// ID identifies the change (kind, app, worker, entitlement): the same
	// change planned twice has the same ID.
	ID     string            `json:"id"`
	Action connectors.Action `json:"action"`
	// From is the role held before, when a grant changes a role.
	From string `json:"from,omitempty"`
	// Grace and Exception describe a grant, for the ledger.
	Grace     time.Duration `json:"grace,omitempty"`
	Exception bool          `json:"exception,omitempty"`
}

// Deferred is a removal that waits for a grace period.
type Deferred struct {
	Action connectors.Action `json:"action"`
	Until  time.Time         `json:"until"`
}

// Orphan is an account no worker matches.
type Orphan struct {
	App     string                  `json:"app"`
	Account connectors.AccountState `json:"account"`
}

// Summary counts a plan's steps by what they do.
type Summary struct {
	Create   int `json:"create"`
	Grant    int `json:"grant"`
	Change   int `json:"change"`
	Revoke   int `json:"revoke"`
	Suspend  int `json:"suspend"`
	Restore  int `json:"restore"`
	Transfer int `json:"transfer"`
	Delete   int `json:"delete"`
	Deferred int `json:"deferred"`
	Orphans  int `json:"orphans"`
}

// Summary counts the plan's steps.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, st := range p.Steps {
		switch st.Action.Kind {
		case connectors.CreateAccount:
			s.Create++
		case connectors.Grant:
			if st.From != "" {
				s.Change++
			} else {
				s.Grant++
			}
		case connectors.Revoke:
			s.Revoke++
		case connectors.SuspendAccount:
			s.Suspend++
		case connectors.RestoreAccount:
			s.Restore++
		case connectors.TransferData:
			s.Transfer++
		case connectors.DeleteAccount:
			s.Delete++
		}
	}
	s.Deferred = len(p.Deferred)
	s.Orphans = len(p.Orphans)
	return s
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Fingerprint is a hash of the plan's steps, independent of its id and
// time: two plans with the same changes have the same fingerprint.
func (p *Plan) Fingerprint() string {
	h := sha256.New()
	for _, s := range p.Steps {
		h.Write([]byte(s.ID))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// StepID is the identity of a change.
func StepID(a connectors.Action) string {
	h := sha256.Sum256([]byte(string(a.Kind) + "\x00" + a.App + "\x00" + string(a.Person.Worker) + "\x00" + a.Entitlement.String()))
	return hex.EncodeToString(h[:8])
}

// Desired is one entitlement policy wants a worker to hold.
type Desired struct {
	App         string                 `json:"app"`
	Entitlement connectors.Entitlement `json:"entitlement"`
	// Grace is how long after a move the entitlement stays.
	Grace time.Duration `json:"grace,omitempty"`
	// Why names the roles and exceptions granting it ("role engineer").
	Why string `json:"why,omitempty"`
	// Exception is true when only exceptions grant it.
	Exception bool `json:"exception,omitempty"`
}

// LedgerEntry records a grant Roster made, so a later removal knows why it
// was there and how long its grace is.
type LedgerEntry struct {
	Entitlement connectors.Entitlement `json:"entitlement"`
	Since       time.Time              `json:"since"`
	Why         string                 `json:"why,omitempty"`
	Exception   bool                   `json:"exception,omitempty"`
	Grace       time.Duration          `json:"grace,omitempty"`
}

// Ledger is one worker's grants by app and entitlement key.
type Ledger map[string]map[connectors.EntitlementKey]LedgerEntry

// PlanWorker is one worker as the planner sees them.
type PlanWorker struct {
	// Worker with Status set to the effective status at Input.Now.
	Worker *Worker
	Person connectors.Person
	// Desired grants (only for active workers), sorted by app and
	// entitlement.
	Desired []Desired
	// Expired holds exception grants that have run out.
	Expired []Desired
	Ledger  Ledger
}

// Input is everything Compute needs.
type Input struct {
	Now time.Time
	// Apps are the connector instances, sorted.
	Apps []string
	// Actual is each app's last known state.
	Actual map[string]*connectors.State
	// Workers sorted by id.
	Workers []PlanWorker
	// Retention: a leaver's accounts are deleted this long after
	// termination; 0 never deletes.
	Retention time.Duration
	// Transfers lists apps that can hand a leaver's data to the manager.
	Transfers map[string]bool
}

type appIndex struct {
	byWorker map[connectors.WorkerID]int
	byEmail  map[string]int
	used     []bool
}

func indexState(st *connectors.State) *appIndex {
	ix := &appIndex{byWorker: map[connectors.WorkerID]int{}, byEmail: map[string]int{}}
	if st == nil {
		return ix
	}
	ix.used = make([]bool, len(st.Accounts))
	for i, a := range st.Accounts {
		if a.Worker != "" {
			if _, dup := ix.byWorker[a.Worker]; !dup {
				ix.byWorker[a.Worker] = i
			}
		}
		if a.Email != "" {
			k := strings.ToLower(a.Email)
			if _, dup := ix.byEmail[k]; !dup {
				ix.byEmail[k] = i
			}
		}
	}
	return ix
}

func (ix *appIndex) find(p *connectors.Person) int {
	if i, ok := ix.byWorker[p.Worker]; ok {
		return i
	}
	if p.Email != "" {
		if i, ok := ix.byEmail[strings.ToLower(p.Email)]; ok {
			return i
		}
	}
	return -1
}

// Compute is the planner: a pure function of desired and actual state.
// The output order is deterministic.
func Compute(in Input) *Plan {
	p := &Plan{CreatedAt: in.Now.UTC()}
	idx := make(map[string]*appIndex, len(in.Apps))
	for _, app := range in.Apps {
		idx[app] = indexState(in.Actual[app])
	}
	for i := range in.Workers {
		pw := &in.Workers[i]
		before := len(p.Steps)
		desiredByApp := map[string][]Desired{}
		for _, d := range pw.Desired {
			desiredByApp[d.App] = append(desiredByApp[d.App], d)
		}
		for _, app := range in.Apps {
			var acct *connectors.AccountState
			if ai := idx[app].find(&pw.Person); ai >= 0 {
				idx[app].used[ai] = true
				acct = &in.Actual[app].Accounts[ai]
			}
			planWorkerApp(p, &in, pw, app, acct, desiredByApp[app])
		}
		if pw.Worker.Status != Terminated || len(p.Steps) > before {
			p.Managed++
		}
	}
	for _, app := range in.Apps {
		st := in.Actual[app]
		if st == nil {
			continue
		}
		for i, a := range st.Accounts {
			if !idx[app].used[i] {
				p.Orphans = append(p.Orphans, Orphan{App: app, Account: a})
			}
		}
	}
	return p
}

func planWorkerApp(p *Plan, in *Input, pw *PlanWorker, app string, acct *connectors.AccountState, desired []Desired) {
	w := pw.Worker
	var steps []Step
	add := func(kind connectors.ActionKind, e connectors.Entitlement, reason, detail, from string) *Step {
		a := connectors.Action{Kind: kind, App: app, Person: pw.Person, Entitlement: e, Reason: reason, Detail: detail}
		if acct != nil {
			a.Account = acct.ID
		}
		steps = append(steps, Step{ID: StepID(a), Action: a, From: from})
		return &steps[len(steps)-1]
	}
	ledger := pw.Ledger[app]

	switch w.Status {
	case Pending:
		// Nothing until the start date.
	case Terminated:
		if acct == nil {
			break
		}
		if !acct.Suspended {
			add(connectors.SuspendAccount, connectors.Account, Leaver, "", "")
			if in.Transfers[app] && pw.Person.Manager != "" {
				add(connectors.TransferData, connectors.Account, Leaver, "to "+pw.Person.Manager, "")
			}
		}
		for _, e := range acct.Entitlements {
			add(connectors.Revoke, e, Leaver, "", "")
		}
		if in.Retention > 0 && !w.TerminatedAt.IsZero() && !in.Now.Before(w.TerminatedAt.Add(in.Retention)) {
			add(connectors.DeleteAccount, connectors.Account, Leaver, "retention "+formatDuration(in.Retention)+" passed", "")
		}
	case Active:
		planActive(p, in, pw, app, acct, desired, ledger, add)
	}
	sort.SliceStable(steps, func(i, j int) bool {
		return steps[i].Action.Kind.Phase() < steps[j].Action.Kind.Phase()
	})
	p.Steps = append(p.Steps, steps...)
}

// addFunc appends a step; the pointer is valid until the next call.
type addFunc func(kind connectors.ActionKind, e connectors.Entitlement, reason, detail, from string) *Step

func planActive(p *Plan, in *Input, pw *PlanWorker, app string, acct *connectors.AccountState, desired []Desired, ledger map[connectors.EntitlementKey]LedgerEntry, add addFunc) {
	w := pw.Worker
	addReason := func(key connectors.EntitlementKey) string {
		if _, had := ledger[key]; had {
			return Drift // we granted it once; someone removed it
		}
		if w.Transition == Joiner || w.Transition == Mover || w.Transition == Rehire {
			return w.Transition
		}
		return PolicyChange
	}
	var wantAccount *Desired
	want := map[connectors.EntitlementKey]Desired{}
	for i, d := range desired {
		if d.Entitlement.IsAccount() {
			wantAccount = &desired[i]
			continue
		}
		want[d.Entitlement.Key()] = d
	}

	if wantAccount != nil {
		switch {
		case acct == nil:
			add(connectors.CreateAccount, wantAccount.Entitlement, addReason(connectors.Account.Key()), wantAccount.Why, "")
		case acct.Suspended:
			reason := Rehire
			if w.Transition != Rehire {
				reason = addReason(connectors.Account.Key())
			}
			add(connectors.RestoreAccount, connectors.Account, reason, wantAccount.Why, "")
			if acct.Role != wantAccount.Entitlement.Role && wantAccount.Entitlement.Role != "" {
				add(connectors.Grant, wantAccount.Entitlement, reason, wantAccount.Why, orNone(acct.Role))
			}
		case wantAccount.Entitlement.Role != "" && acct.Role != wantAccount.Entitlement.Role:
			add(connectors.Grant, wantAccount.Entitlement, addReason(connectors.Account.Key()), wantAccount.Why, orNone(acct.Role))
		}
	}

	held := map[connectors.EntitlementKey]connectors.Entitlement{}
	if acct != nil {
		for _, e := range acct.Entitlements {
			held[e.Key()] = e
		}
	}
	for _, d := range desired {
		if d.Entitlement.IsAccount() {
			continue
		}
		h, ok := held[d.Entitlement.Key()]
		var st *Step
		switch {
		case !ok:
			st = add(connectors.Grant, d.Entitlement, addReason(d.Entitlement.Key()), d.Why, "")
		case h.Role != d.Entitlement.Role:
			st = add(connectors.Grant, d.Entitlement, addReason(d.Entitlement.Key()), d.Why, orNone(h.Role))
		default:
			continue
		}
		st.Grace, st.Exception = d.Grace, d.Exception
	}
	if acct == nil {
		return
	}
	expired := map[connectors.EntitlementKey]bool{}
	for _, e := range pw.Expired {
		expired[e.Entitlement.Key()] = true
	}
	removeAll := wantAccount == nil && len(want) == 0
	deferredAny := false
	for _, e := range acct.Entitlements {
		if _, ok := want[e.Key()]; ok {
			continue
		}
		reason, grace := removalReason(w, ledger, e.Key(), expired)
		if reason == Mover && grace > 0 {
			if until := w.MovedAt.Add(grace); in.Now.Before(until) {
				a := connectors.Action{Kind: connectors.Revoke, App: app, Person: pw.Person, Account: acct.ID, Entitlement: e, Reason: reason}
				p.Deferred = append(p.Deferred, Deferred{Action: a, Until: until.UTC()})
				deferredAny = true
				continue
			}
		}
		add(connectors.Revoke, e, reason, ledger[e.Key()].Why, "")
	}
	// No access left in this app at all: an account Roster created goes
	// too (one it did not create is left alone and only its grants are
	// reported as drift).
	_, ours := ledger[connectors.Account.Key()]
	if removeAll && ours && !acct.Suspended && !deferredAny {
		reason, grace := removalReason(w, ledger, connectors.Account.Key(), expired)
		if reason == Mover && grace > 0 && in.Now.Before(w.MovedAt.Add(grace)) {
			a := connectors.Action{Kind: connectors.SuspendAccount, App: app, Person: pw.Person, Account: acct.ID, Entitlement: connectors.Account, Reason: reason}
			p.Deferred = append(p.Deferred, Deferred{Action: a, Until: w.MovedAt.Add(grace).UTC()})
			return
		}
		add(connectors.SuspendAccount, connectors.Account, reason, "no role grants access any more", "")
	}
}

func removalReason(w *Worker, ledger map[connectors.EntitlementKey]LedgerEntry, key connectors.EntitlementKey, expired map[connectors.EntitlementKey]bool) (string, time.Duration) {
	le, had := ledger[key]
	switch {
	case !had:
		return Drift, 0
	case le.Exception && expired[key]:
		return ExceptionExpired, 0
	case !w.MovedAt.IsZero() && w.MovedAt.After(le.Since):
		return Mover, le.Grace
	}
	return PolicyChange, 0
}

func orNone(role string) string {
	if role == "" {
		return "none"
	}
	return role
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
