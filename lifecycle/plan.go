package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
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
	// Unreadable names the apps whose state could not be read, with the
	// reason: they got no actions in this plan.
	Unreadable map[string]string `json:"unreadable,omitempty"`
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
	// loadLedger, when set and Ledger is nil, reads the ledger the first
	// time the planner needs it: Engine.Plan sets it, because most
	// workers' apps already match and need no ledger at all.
	loadLedger func() (Ledger, error)
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
	workers  []connectors.WorkerID // the worker each account is linked to, if any
	used     []bool
}

func indexState(st *connectors.State) *appIndex {
	ix := &appIndex{byWorker: map[connectors.WorkerID]int{}, byEmail: map[string]int{}}
	if st == nil {
		return ix
	}
	ix.used = make([]bool, len(st.Accounts))
	ix.workers = make([]connectors.WorkerID, len(st.Accounts))
	// Of two accounts with the same worker id or e-mail, the one with the
	// smaller account id wins, whatever order the app listed them in.
	for i, a := range st.Accounts {
		ix.workers[i] = a.Worker
		if a.Worker != "" {
			if j, dup := ix.byWorker[a.Worker]; !dup || a.ID < st.Accounts[j].ID {
				ix.byWorker[a.Worker] = i
			}
		}
		if a.Email != "" {
			k := strings.ToLower(a.Email)
			if j, dup := ix.byEmail[k]; !dup || a.ID < st.Accounts[j].ID {
				ix.byEmail[k] = i
			}
		}
	}
	return ix
}

// find returns the index of p's account: the one the app links to p's
// worker id, else the one with p's e-mail that the app links to no other
// worker (an address reused by a new hire must not hand them the account
// of the person who had it before), or -1.
func (ix *appIndex) find(p *connectors.Person) int {
	if i, ok := ix.byWorker[p.Worker]; ok {
		return i
	}
	if p.Email != "" {
		if i, ok := ix.byEmail[strings.ToLower(p.Email)]; ok && (ix.workers[i] == "" || ix.workers[i] == p.Worker) {
			return i
		}
	}
	return -1
}

// Compute is the planner: a pure function of desired and actual state.
// The output order is deterministic: it does not depend on the order of
// the input's workers, apps, accounts, entitlements or desired grants
// (Compute sorts copies of those that are not in the documented order).
func Compute(in Input) *Plan {
	if !slices.IsSortedFunc(in.Workers, cmpPlanWorker) {
		in.Workers = slices.Clone(in.Workers)
		slices.SortStableFunc(in.Workers, cmpPlanWorker)
	}
	pl := newPlanner(in)
	for i := range in.Workers {
		pl.add(&in.Workers[i])
	}
	return pl.finish()
}

// planner is Compute one worker at a time, so that a caller that reads
// workers in id order (Engine.Plan) need not hold every worker's desired
// grants and ledger in memory at once.
type planner struct {
	in  Input // Workers unused
	idx map[string]*appIndex
	p   *Plan
	err error // the first error of a PlanWorker.loadLedger
}

func newPlanner(in Input) *planner {
	in.Workers = nil
	if !slices.IsSorted(in.Apps) {
		in.Apps = slices.Clone(in.Apps)
		slices.Sort(in.Apps)
	}
	pl := &planner{in: in, idx: make(map[string]*appIndex, len(in.Apps)), p: &Plan{CreatedAt: in.Now.UTC()}}
	for _, app := range in.Apps {
		pl.idx[app] = indexState(in.Actual[app])
	}
	return pl
}

// add plans one worker. Workers must come in id order for the plan to be
// in id order; pw is not kept.
func (pl *planner) add(pw *PlanWorker) {
	p, in := pl.p, &pl.in
	before := len(p.Steps)
	desired := pw.Desired
	if !slices.IsSortedFunc(desired, cmpDesiredApp) {
		desired = slices.Clone(desired)
		slices.SortStableFunc(desired, cmpDesiredApp)
	}
	for _, app := range in.Apps {
		// desired is sorted by app: this app's grants are the next run.
		for len(desired) > 0 && desired[0].App < app {
			desired = desired[1:]
		}
		n := 0
		for n < len(desired) && desired[n].App == app {
			n++
		}
		mine := desired[:n:n]
		desired = desired[n:]
		var acct *connectors.AccountState
		if ai := pl.idx[app].find(&pw.Person); ai >= 0 {
			pl.idx[app].used[ai] = true
			acct = &in.Actual[app].Accounts[ai]
			if !slices.IsSortedFunc(acct.Entitlements, cmpEntitlement) {
				c := *acct
				c.Entitlements = slices.Clone(c.Entitlements)
				slices.SortFunc(c.Entitlements, cmpEntitlement)
				acct = &c
			}
		}
		pl.planWorkerApp(pw, app, acct, mine)
	}
	if pw.Worker.Status != Terminated || len(p.Steps) > before {
		p.Managed++
	}
}

// ledger returns pw's ledger, reading it first if need be.
func (pl *planner) ledger(pw *PlanWorker) Ledger {
	if pw.Ledger == nil && pw.loadLedger != nil {
		l, err := pw.loadLedger()
		if err != nil && pl.err == nil {
			pl.err = err
		}
		if l == nil {
			l = Ledger{}
		}
		pw.Ledger = l
	}
	return pw.Ledger
}

// finish reports the accounts no worker matched and returns the plan.
func (pl *planner) finish() *Plan {
	p := pl.p
	for _, app := range pl.in.Apps {
		st := pl.in.Actual[app]
		if st == nil {
			continue
		}
		first := len(p.Orphans)
		for i, a := range st.Accounts {
			if !pl.idx[app].used[i] {
				p.Orphans = append(p.Orphans, Orphan{App: app, Account: a})
			}
		}
		slices.SortStableFunc(p.Orphans[first:], func(a, b Orphan) int { return strings.Compare(string(a.Account.ID), string(b.Account.ID)) })
	}
	return p
}

func cmpPlanWorker(a, b PlanWorker) int {
	return strings.Compare(string(a.Worker.ID), string(b.Worker.ID))
}

func cmpDesiredApp(a, b Desired) int {
	if c := strings.Compare(a.App, b.App); c != 0 {
		return c
	}
	return cmpEntitlement(a.Entitlement, b.Entitlement)
}

func cmpEntitlement(a, b connectors.Entitlement) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

func (pl *planner) planWorkerApp(pw *PlanWorker, app string, acct *connectors.AccountState, desired []Desired) {
	p, in := pl.p, &pl.in
	w := pw.Worker
	start := len(p.Steps)
	add := func(kind connectors.ActionKind, e connectors.Entitlement, reason, detail, from string) *Step {
		a := connectors.Action{Kind: kind, App: app, Person: pw.Person, Entitlement: e, Reason: reason, Detail: detail}
		if acct != nil {
			a.Account = acct.ID
		}
		p.Steps = append(p.Steps, Step{ID: StepID(a), Action: a, From: from})
		return &p.Steps[len(p.Steps)-1]
	}
	ledger := func() map[connectors.EntitlementKey]LedgerEntry { return pl.ledger(pw)[app] }

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
	slices.SortStableFunc(p.Steps[start:], func(a, b Step) int {
		return a.Action.Kind.Phase() - b.Action.Kind.Phase()
	})
}

// addFunc appends a step; the pointer is valid until the next call.
type addFunc func(kind connectors.ActionKind, e connectors.Entitlement, reason, detail, from string) *Step

func planActive(p *Plan, in *Input, pw *PlanWorker, app string, acct *connectors.AccountState, desired []Desired, ledgerOf func() map[connectors.EntitlementKey]LedgerEntry, add addFunc) {
	w := pw.Worker
	// The ledger is read only when something differs.
	var (
		led    map[connectors.EntitlementKey]LedgerEntry
		loaded bool
	)
	ledger := func() map[connectors.EntitlementKey]LedgerEntry {
		if !loaded {
			led, loaded = ledgerOf(), true
		}
		return led
	}
	transitionReason := func() string {
		if w.Transition == Joiner || w.Transition == Mover || w.Transition == Rehire {
			return w.Transition
		}
		return PolicyChange
	}
	addReason := func(key connectors.EntitlementKey) string {
		if _, had := ledger()[key]; had {
			return Drift // we granted it once; someone removed it
		}
		return transitionReason()
	}
	// changeReason labels a role change of something the worker holds:
	// drift only when the app no longer has the role Roster granted.
	changeReason := func(key connectors.EntitlementKey, heldRole string) string {
		if le, had := ledger()[key]; had && le.Entitlement.Role != "" && le.Entitlement.Role != heldRole {
			return Drift
		}
		return transitionReason()
	}
	// The slices here are short (a worker's grants in one app), so they
	// are searched rather than indexed with maps: planning 100,000
	// workers allocates much less that way.
	var wantAccount *Desired
	nWant := 0
	for i, d := range desired {
		if d.Entitlement.IsAccount() {
			wantAccount = &desired[i]
			continue
		}
		nWant++
	}
	wanted := func(key connectors.EntitlementKey) bool {
		for i := range desired {
			if e := desired[i].Entitlement; !e.IsAccount() && e.Key() == key {
				return true
			}
		}
		return false
	}

	if wantAccount != nil {
		switch {
		case acct == nil:
			st := add(connectors.CreateAccount, wantAccount.Entitlement, addReason(connectors.Account.Key()), wantAccount.Why, "")
			st.Grace = wantAccount.Grace
		case acct.Suspended:
			reason := Rehire
			if w.Transition != Rehire {
				reason = addReason(connectors.Account.Key())
			}
			st := add(connectors.RestoreAccount, connectors.Account, reason, wantAccount.Why, "")
			st.Grace = wantAccount.Grace
			if acct.Role != wantAccount.Entitlement.Role && wantAccount.Entitlement.Role != "" {
				add(connectors.Grant, wantAccount.Entitlement, reason, wantAccount.Why, orNone(acct.Role))
			}
		case wantAccount.Entitlement.Role != "" && acct.Role != wantAccount.Entitlement.Role:
			add(connectors.Grant, wantAccount.Entitlement, changeReason(connectors.Account.Key(), acct.Role), wantAccount.Why, orNone(acct.Role))
		}
	}

	var held []connectors.Entitlement
	if acct != nil {
		held = acct.Entitlements
	}
	for _, d := range desired {
		if d.Entitlement.IsAccount() {
			continue
		}
		key := d.Entitlement.Key()
		i := slices.IndexFunc(held, func(h connectors.Entitlement) bool { return h.Key() == key })
		var h connectors.Entitlement
		ok := i >= 0
		if ok {
			h = held[i]
		}
		var st *Step
		switch {
		case !ok:
			st = add(connectors.Grant, d.Entitlement, addReason(d.Entitlement.Key()), d.Why, "")
		case h.Role != d.Entitlement.Role:
			st = add(connectors.Grant, d.Entitlement, changeReason(d.Entitlement.Key(), h.Role), d.Why, orNone(h.Role))
		default:
			continue
		}
		st.Grace, st.Exception = d.Grace, d.Exception
	}
	if acct == nil {
		return
	}
	expired := func(key connectors.EntitlementKey) bool {
		for _, e := range pw.Expired {
			if e.App == app && e.Entitlement.Key() == key {
				return true
			}
		}
		return false
	}
	removeAll := wantAccount == nil && nWant == 0
	deferredAny := false
	for _, e := range acct.Entitlements {
		if wanted(e.Key()) {
			continue
		}
		reason, grace := removalReason(w, ledger(), e.Key(), expired)
		if reason == Mover && grace > 0 {
			if until := w.MovedAt.Add(grace); in.Now.Before(until) {
				a := connectors.Action{Kind: connectors.Revoke, App: app, Person: pw.Person, Account: acct.ID, Entitlement: e, Reason: reason}
				p.Deferred = append(p.Deferred, Deferred{Action: a, Until: until.UTC()})
				deferredAny = true
				continue
			}
		}
		add(connectors.Revoke, e, reason, ledger()[e.Key()].Why, "")
	}
	// No access left in this app at all: an account Roster created goes
	// too (one it did not create is left alone and only its grants are
	// reported as drift).
	if !removeAll || acct.Suspended || deferredAny {
		return
	}
	if _, ours := ledger()[connectors.Account.Key()]; ours {
		reason, grace := removalReason(w, ledger(), connectors.Account.Key(), expired)
		if reason == Mover && grace > 0 && in.Now.Before(w.MovedAt.Add(grace)) {
			a := connectors.Action{Kind: connectors.SuspendAccount, App: app, Person: pw.Person, Account: acct.ID, Entitlement: connectors.Account, Reason: reason}
			p.Deferred = append(p.Deferred, Deferred{Action: a, Until: w.MovedAt.Add(grace).UTC()})
			return
		}
		add(connectors.SuspendAccount, connectors.Account, reason, "no role grants access any more", "")
	}
}

func removalReason(w *Worker, ledger map[connectors.EntitlementKey]LedgerEntry, key connectors.EntitlementKey, expired func(connectors.EntitlementKey) bool) (string, time.Duration) {
	le, had := ledger[key]
	switch {
	case !had:
		return Drift, 0
	case le.Exception && expired(key):
		return ExceptionExpired, 0
	case w.Transition == Mover && !w.MovedAt.IsZero() && w.MovedAt.After(le.Since):
		// Only while the move is being carried out: once it is, a later
		// removal is a policy change, with no grace.
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
