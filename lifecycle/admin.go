package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/policy"
)

// What an admin does to a running engine (the admin API of `roster
// serve`) besides planning: apply the plan they reviewed, reject a
// pending plan, put a new policy in force. Each is safe while the server
// loop runs.

// ErrPlanChanged matches *PlanChangedError with errors.Is.
var ErrPlanChanged = errors.New("plan changed")

// PlanChangedError is returned by ApplyChecked when the plan it computes
// is not the one the caller reviewed: nothing was applied.
type PlanChangedError struct {
	Reviewed string // the fingerprint the caller reviewed
	Current  string // the fingerprint of the plan computed now
	Steps    int    // the number of steps of the plan computed now
}

func (e *PlanChangedError) Error() string {
	return fmt.Sprintf("the plan changed since it was shown (now %d steps, fingerprint %s; you reviewed %s): nothing was applied; review the new plan and apply again",
		e.Steps, e.Current, e.Reviewed)
}

// Is makes errors.Is(err, ErrPlanChanged) true.
func (e *PlanChangedError) Is(target error) bool { return target == ErrPlanChanged }

// ApplyResult is what ApplyChecked did.
type ApplyResult struct {
	// Plan is the plan computed and carried out (or held for approval).
	Plan *Plan `json:"plan"`
	// Report is what carrying it out did; nil when nothing was started.
	Report *Report `json:"report,omitempty"`
	// Resumed is what finishing the outbox left by earlier runs did.
	Resumed *Report `json:"resumed,omitempty"`
}

// ApplyChecked is a whole apply in one call, as `roster apply` does it in
// two (Prepare, then ApplyPlan after the confirmation): it finishes the
// outbox, brings statuses up to date, computes the plan and, if its
// fingerprint is the one the caller reviewed (reviewed; "" checks
// nothing), carries it out with the safety gate. A plan that differs
// returns a *PlanChangedError with the result (its Plan is the new one)
// and applies nothing; a plan over the thresholds is saved as pending and
// an *ApprovalRequiredError returned.
//
// It is safe while the server loop runs (Run): it waits for the actions
// already running before it reads the apps, and the plan's actions then
// run alongside the loop's own work. The actions run under ctx: when it
// ends, those not done stay in the outbox for the next run.
func (e *Engine) ApplyChecked(ctx context.Context, actor, reviewed string) (*ApplyResult, error) {
	e.applyMu.Lock()
	p, resumed, err := e.prepareLocked(ctx, actor)
	res := &ApplyResult{Plan: p, Resumed: resumed}
	if err != nil {
		e.applyMu.Unlock()
		return res, err
	}
	if fp := p.Fingerprint(); reviewed != "" && fp != reviewed {
		e.applyMu.Unlock()
		return res, &PlanChangedError{Reviewed: reviewed, Current: fp, Steps: len(p.Steps)}
	}
	b, err := e.startLocked(ctx, p, ApplyOptions{Actor: actor}, nil)
	e.applyMu.Unlock()
	switch {
	case b != nil:
		res.Report, err = e.await(b, p, nil)
	case p.Empty():
		res.Report = &Report{}
	}
	return res, err
}

// Reject records actor's rejection of a pending plan, with the reason
// given: it will never run. The changes it held are planned again by the
// next apply or full reconcile (and gated again if they still exceed the
// thresholds). It fails with ErrNotFound for an unknown id and when the
// plan is not pending.
func (e *Engine) Reject(ctx context.Context, actor, id, reason string) (*SavedPlan, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sp SavedPlan
	err := e.db.Update(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx, bucketPlans, []byte(id), &sp)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("plan %s: %w", id, ErrNotFound)
		}
		if sp.Status != PlanPending {
			return fmt.Errorf("plan %s is %s, not pending", id, sp.Status)
		}
		sp.Status, sp.DecidedBy, sp.DecidedAt = PlanRejected, actor, e.now().UTC()
		d := summaryDetails(sp.Plan)
		if reason != "" {
			d["reason"] = reason
		}
		if _, err := audit.Append(tx, &audit.Record{Type: "plan.rejected", Actor: actor, PlanID: id,
			Message: "pending plan rejected", Details: d}, e.now); err != nil {
			return err
		}
		return putJSON(tx, bucketPlans, []byte(id), &sp)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("lifecycle: reject %s: %w", id, err)
	}
	return &sp, nil
}

// LoadPolicy puts pol in force (a policy set that loaded cleanly) and
// records it in the audit log (policy.load, actor) unless it is the one
// recorded last; if that record cannot be written, the old policy stays.
// A plan being made finishes with the policy it started with. It reports
// whether the policy differs from the one it replaces.
func (e *Engine) LoadPolicy(actor string, pol *policy.Set) (changed bool, err error) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if err := e.auditPolicy(actor, pol); err != nil {
		return false, fmt.Errorf("lifecycle: load policy: %w", err)
	}
	changed = e.Policy().Hash() != pol.Hash()
	e.SetPolicy(pol)
	return changed, nil
}

// noteReconcile records that every app was read just now for p, and
// which could not be.
func (e *Engine) noteReconcile(p *Plan) error {
	now := e.now().UTC()
	var unreadable []byte
	if len(p.Unreadable) > 0 {
		var err error
		if unreadable, err = json.Marshal(p.Unreadable); err != nil {
			return err
		}
	}
	err := e.db.Update(func(tx *bolt.Tx) error {
		if err := putMeta(tx, "last_reconcile", now.Format(time.RFC3339Nano)); err != nil {
			return err
		}
		return putMeta(tx, "unreadable", string(unreadable))
	})
	if err != nil {
		return fmt.Errorf("lifecycle: record the reconcile: %w", err)
	}
	return nil
}

// lastReconcile reads what noteReconcile recorded.
func lastReconcile(tx *bolt.Tx) (time.Time, map[string]string) {
	t, err := time.Parse(time.RFC3339Nano, getMeta(tx, "last_reconcile"))
	if err != nil {
		return time.Time{}, nil
	}
	var unreadable map[string]string
	if v := getMeta(tx, "unreadable"); v != "" {
		if json.Unmarshal([]byte(v), &unreadable) != nil {
			unreadable = map[string]string{"?": "unreadable record of the last reconcile"}
		}
	}
	return t, unreadable
}

// samePending reports whether a pending plan with p's changes is saved
// already (the server's next full reconcile then keeps it rather than
// replace it with an identical one under a new id, so an admin reviewing
// it can approve it by the id they were given).
func (e *Engine) samePending(p *Plan) (string, bool) {
	var id string
	_ = e.db.View(func(tx *bolt.Tx) error {
		pending, err := pendingPlans(tx)
		if err != nil {
			return err
		}
		fp := p.Fingerprint()
		for _, sp := range pending {
			if sp.Plan.Fingerprint() == fp && sp.Plan.PolicyHash == p.PolicyHash {
				id = sp.Plan.ID
			}
		}
		return nil
	})
	return id, id != ""
}
