package lifecycle

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
)

// SavedPlans returns the saved plans, oldest first.
func (e *Engine) SavedPlans(ctx context.Context) ([]*SavedPlan, error) {
	var out []*SavedPlan
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = decodeAll[SavedPlan](tx, bucketPlans)
		return err
	})
	return out, err
}

// SavedPlan returns one saved plan.
func (e *Engine) SavedPlan(ctx context.Context, id string) (*SavedPlan, error) {
	var sp SavedPlan
	var ok bool
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(tx, bucketPlans, []byte(id), &sp)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("plan %s: %w", id, ErrNotFound)
	}
	return &sp, nil
}

// ApproveResult says what approving a plan did.
type ApproveResult struct {
	Plan   *Plan   `json:"plan"`
	Report *Report `json:"report"`
	// Stale counts the approved plan's steps that were no longer needed
	// (the apps or HR changed since it was made) and were not applied.
	Stale int `json:"stale"`
}

// Approve records actor's approval of a pending plan and carries it out.
// The apps are read again first: steps that are no longer needed are
// dropped (counted in Stale), and changes that are new since the plan was
// saved are left for the next apply, so an approval never does more than
// the approver saw.
//
// Approve is safe while the server loop runs (Run): it waits for the
// actions already running before it reads the apps, and the approved
// steps then run alongside the loop's own work without holding up HR
// changes. The actions run under ctx: when it ends, those not done stay
// in the outbox for the next run.
func (e *Engine) Approve(ctx context.Context, actor, id string) (*ApproveResult, error) {
	// One lock from reading the apps until the approved steps are in the
	// outbox and dispatched: no other plan is made in between.
	e.applyMu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			e.applyMu.Unlock()
		}
	}
	defer unlock()
	sp, err := e.SavedPlan(ctx, id)
	if err != nil {
		return nil, err
	}
	if sp.Status != PlanPending {
		return nil, fmt.Errorf("plan %s is %s, not pending", id, sp.Status)
	}
	fresh, resumed, err := e.prepareLocked(ctx, actor)
	if err != nil {
		return &ApproveResult{Report: resumed}, err
	}
	if len(fresh.Unreadable) > 0 {
		// Steps for an app we cannot read cannot be checked; the plan
		// stays pending until every app answers.
		names := make([]string, 0, len(fresh.Unreadable))
		for app := range fresh.Unreadable {
			names = append(names, app)
		}
		sort.Strings(names)
		return &ApproveResult{Report: resumed}, fmt.Errorf("plan %s stays pending: cannot read the state of %s", id, strings.Join(names, ", "))
	}
	still := map[string]Step{}
	for _, st := range fresh.Steps {
		still[st.ID] = st
	}
	// Deferred removals are carried over so that applying the plan does
	// not mark a mover's transition done while their grace runs.
	p := &Plan{ID: id, CreatedAt: e.now().UTC(), PolicyHash: fresh.PolicyHash, Managed: fresh.Managed, Deferred: fresh.Deferred}
	res := &ApproveResult{Plan: p}
	approved := map[string]bool{}
	for _, st := range sp.Plan.Steps {
		if cur, ok := still[st.ID]; ok {
			p.Steps = append(p.Steps, cur)
			approved[st.ID] = true
		} else {
			res.Stale++
		}
	}
	// Workers with changes the approver did not see keep their open
	// transition: those changes come with the next apply.
	unsettled := map[connectors.WorkerID]bool{}
	for _, st := range fresh.Steps {
		if !approved[st.ID] {
			unsettled[st.Action.Person.Worker] = true
		}
	}
	err = e.db.Update(func(tx *bolt.Tx) error {
		// Checked again in the write transaction: of two concurrent
		// approvals (from two processes), only one goes through.
		var cur SavedPlan
		if _, err := getJSON(tx, bucketPlans, []byte(id), &cur); err != nil {
			return err
		}
		if cur.Status != PlanPending {
			return fmt.Errorf("plan %s is %s, not pending", id, cur.Status)
		}
		sp.Status, sp.DecidedBy, sp.DecidedAt = PlanApproved, actor, e.now().UTC()
		d := summaryDetails(sp.Plan)
		d["stale_steps"] = fmt.Sprint(res.Stale)
		if _, err := audit.Append(tx, &audit.Record{Type: "plan.approved", Actor: actor, PlanID: id,
			Message: "pending plan approved", Details: d}, e.now); err != nil {
			return err
		}
		return putJSON(tx, bucketPlans, []byte(id), sp)
	})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: approve %s: %w", id, err)
	}
	var rep *Report
	b, err := e.startLocked(ctx, p, ApplyOptions{Actor: actor, Approved: true}, unsettled)
	unlock()
	switch {
	case b != nil:
		rep, err = e.await(b, p, unsettled)
	case p.Empty():
		rep = &Report{}
	}
	if rep != nil {
		rep.Resumed = resumed.Done + len(resumed.Failed) + resumed.Skipped
		rep.Add(resumed)
	}
	res.Report = rep
	return res, err
}

// StatusReport is an overview of the engine's state.
type StatusReport struct {
	Workers      map[Status]int `json:"workers"`
	Transitions  map[string]int `json:"openTransitions"`
	Outbox       int            `json:"outbox"`
	PendingPlans []string       `json:"pendingPlans"`
	AuditRecords uint64         `json:"auditRecords"`
	AuditHead    string         `json:"auditHead"`
	PolicyHash   string         `json:"policyHash"`
	Apps         []string       `json:"apps"`
	LastApply    time.Time      `json:"lastApply,omitzero"`
	// LastReconcile is when every app was last read and everybody
	// planned (apply, approve, the server's full reconcile); Unreadable
	// names the apps that could not be read then, with the reason.
	LastReconcile time.Time         `json:"lastReconcile,omitzero"`
	Unreadable    map[string]string `json:"unreadable,omitempty"`
}

// Status reports workers by status, the outbox depth, pending plans and
// the audit head.
func (e *Engine) Status(ctx context.Context) (*StatusReport, error) {
	s := &StatusReport{Workers: map[Status]int{Pending: 0, Active: 0, Terminated: 0}, Transitions: map[string]int{},
		Apps: e.Apps(), PolicyHash: e.Policy().Hash(), PendingPlans: []string{}}
	now := e.now()
	err := e.db.View(func(tx *bolt.Tx) error {
		ws, err := allWorkers(tx)
		if err != nil {
			return err
		}
		for _, w := range ws {
			s.Workers[EffectiveStatus(&w.HR, w.Deleted, now, e.loc)]++
			if w.Transition != "" {
				s.Transitions[w.Transition]++
			}
		}
		s.Outbox = tx.Bucket(bucketOutbox).Stats().KeyN
		if t, err := time.Parse(time.RFC3339Nano, getMeta(tx, "last_apply")); err == nil {
			s.LastApply = t
		}
		s.LastReconcile, s.Unreadable = lastReconcile(tx)
		pending, err := pendingPlans(tx)
		for _, sp := range pending {
			s.PendingPlans = append(s.PendingPlans, sp.Plan.ID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: status: %w", err)
	}
	seq, head, err := e.audit.Head(ctx)
	if err != nil {
		return nil, err
	}
	s.AuditRecords, s.AuditHead = seq, head
	return s, nil
}
