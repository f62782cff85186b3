package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/policy"
)

// PlanOptions change how a plan is computed.
type PlanOptions struct {
	// Policy, when set, is used instead of the policy in force: the
	// what-if of `roster plan --policies DIR`.
	Policy *policy.Set
}

// SnapshotError lists the apps whose state could not be read.
type SnapshotError struct {
	Apps map[string]error
}

func (e *SnapshotError) Error() string {
	names := make([]string, 0, len(e.Apps))
	for n := range e.Apps {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s: %v", n, e.Apps[n])
	}
	return "lifecycle: read app state: " + strings.Join(parts, "; ")
}

// Unwrap returns the per-app errors, so errors.As finds a
// *connectors.Error among them.
func (e *SnapshotError) Unwrap() []error {
	out := make([]error, 0, len(e.Apps))
	for _, err := range e.Apps {
		out = append(out, err)
	}
	return out
}

// Snapshot reads every app's state concurrently, retrying transient
// errors like the executor does. It returns the states it could read and,
// if any app could not be read, a *SnapshotError naming them: one app
// being down must not stop the others from being planned.
func (e *Engine) Snapshot(ctx context.Context) (map[string]*connectors.State, error) {
	type res struct {
		app string
		st  *connectors.State
		err error
	}
	ch := make(chan res, len(e.appNames))
	for _, name := range e.appNames {
		go func(c connectors.Connector) {
			var st *connectors.State
			err := e.retry(ctx, func() error {
				var err error
				st, err = c.Snapshot(ctx)
				return err
			})
			ch <- res{c.Name(), st, err}
		}(e.apps[name])
	}
	out := make(map[string]*connectors.State, len(e.appNames))
	failed := map[string]error{}
	for range e.appNames {
		r := <-ch
		if r.err != nil {
			failed[r.app] = r.err
			continue
		}
		out[r.app] = r.st
	}
	if len(failed) > 0 {
		return out, &SnapshotError{Apps: failed}
	}
	return out, nil
}

// Plan computes what it would take to make every app match the policy
// now. It changes nothing: statuses are taken as the clock implies them,
// even where the scheduler has not written them yet.
//
// An app whose state cannot be read gets no actions; it is listed in
// Plan.Unreadable with the reason, and the other apps are planned as
// usual (a leaver must lose access in every app that answers).
//
// Plan is safe to call while the server loop runs (Run): it reads, and
// leaves the loop's cache of the apps' state alone (a snapshot read while
// actions run may miss their effect).
func (e *Engine) Plan(ctx context.Context, o PlanOptions) (*Plan, error) {
	return e.plan(ctx, o, false)
}

// plan is Plan; refresh replaces the server's cached app state with the
// snapshot it reads, which is right only with applyMu held and nothing in
// flight (prepareLocked).
func (e *Engine) plan(ctx context.Context, o PlanOptions, refresh bool) (*Plan, error) {
	actual, err := e.Snapshot(ctx)
	var se *SnapshotError
	if err != nil && !errors.As(err, &se) {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if refresh && o.Policy == nil {
		e.cache.refresh(actual)
	}
	p, err := e.planWith(ctx, o, actual)
	if err != nil {
		return nil, err
	}

	if se != nil {
		p.Unreadable = map[string]string{}
		for app, aerr := range se.Apps {
			p.Unreadable[app] = aerr.Error()
		}
	}
	return p, nil
}

// input is the planner's input for the apps with a state in actual.
func (e *Engine) input(now time.Time, actual map[string]*connectors.State) Input {
	in := Input{Now: now, Actual: actual, Retention: e.retention, Transfers: map[string]bool{}}
	for _, name := range e.appNames {
		if actual[name] != nil {
			in.Apps = append(in.Apps, name)
		}
	}
	for name, c := range e.apps {
		if _, ok := c.(connectors.DataTransferer); ok {
			in.Transfers[name] = true
		}
	}
	return in
}

func (e *Engine) planWith(ctx context.Context, o PlanOptions, actual map[string]*connectors.State) (*Plan, error) {
	pol := o.Policy
	if pol == nil {
		pol = e.Policy()
	}
	now := e.now().UTC()
	in := e.input(now, actual)
	// Workers are planned one at a time, in id order (bbolt key order),
	// so only one worker's desired grants and ledger are in memory at once.
	pl := newPlanner(in)
	err := e.db.View(func(tx *bolt.Tx) error {
		ws, err := allWorkers(tx)
		if err != nil {
			return err
		}
		return e.planWorkers(ctx, tx, pol, ws, nil, now, pl.add)
	})
	if err == nil {
		err = pl.err
	}
	if err != nil {
		return nil, fmt.Errorf("lifecycle: plan: %w", err)
	}
	p := pl.finish()
	p.PolicyHash = pol.Hash()
	return p, nil
}

// planWorkers builds the planner's view of each worker in ws and hands it
// to fn, in the order of ws. The ledger is read from tx only if the
// planner asks for it; tx must stay open while fn runs.
//
// byID resolves managers (for manager chains and data transfer); nil means
// "ws is everybody".
func (e *Engine) planWorkers(ctx context.Context, tx *bolt.Tx, pol *policy.Set, ws []*Worker, byID map[connectors.WorkerID]*Worker, now time.Time, fn func(*PlanWorker)) error {
	if byID == nil {
		byID = make(map[connectors.WorkerID]*Worker, len(ws))
		for _, w := range ws {
			byID[w.ID] = w
		}
	}
	for _, w := range ws {
		if err := ctx.Err(); err != nil {
			return err
		}
		cw := *w
		cw.Status = EffectiveStatus(&w.HR, w.Deleted, now, e.loc)
		if cw.Status != w.Status {
			// The scheduler has not written this transition yet; plan as
			// if it had.
			nw, _ := transition(w, &w.HR, w.Deleted, now, e.loc)
			cw = *nw
		}
		pw := PlanWorker{Worker: &cw, Person: Person(w, byID)}
		if cw.Status == Active {
			res, err := pol.Evaluate(PolicyWorker(w, byID, e.loc), now)
			if err != nil {
				return fmt.Errorf("evaluate policy for %s: %w", w.ID, err)
			}
			pw.Desired, pw.Expired = DesiredFrom(res)
		}
		id := w.ID
		pw.loadLedger = func() (Ledger, error) { return getLedger(tx, id) }
		fn(&pw)
	}
	return nil
}

// Prepare starts a run: it finishes what a previous run left in the
// outbox, brings statuses up to date with the clock, audits a policy
// set it has not seen before, and computes the plan.
//
// It waits for every action already running (those the server loop
// started too), so the apps' state it reads includes them and no step of
// the plan repeats one of them. It records when every app was last read,
// and which could not be (StatusReport.LastReconcile, Unreadable).
func (e *Engine) Prepare(ctx context.Context, actor string) (*Plan, *Report, error) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	return e.prepareLocked(ctx, actor)
}

// prepareLocked is Prepare with applyMu held.
func (e *Engine) prepareLocked(ctx context.Context, actor string) (*Plan, *Report, error) {
	resumed, err := e.drain(ctx)
	if err != nil {
		return nil, resumed, err
	}
	e.disp.waitIdle()
	if _, err := e.Tick(ctx, "scheduler"); err != nil {
		return nil, resumed, err
	}
	if err := e.auditPolicy(actor, e.Policy()); err != nil {
		return nil, resumed, err
	}
	p, err := e.plan(ctx, PlanOptions{}, true)
	if err != nil {
		return p, resumed, err
	}
	return p, resumed, e.noteReconcile(p)
}

// auditPolicy records pol as the policy in force (policy.load) unless it
// is the one recorded last.
func (e *Engine) auditPolicy(actor string, pol *policy.Set) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		if getMeta(tx, "policy_hash") == pol.Hash() {
			return nil
		}
		if _, err := audit.Append(tx, &audit.Record{Type: "policy.load", Actor: actor, Message: "policy set in force",
			Details: map[string]string{"hash": pol.Hash(), "files": strings.Join(pol.Files(), ",")}}, e.now); err != nil {
			return err
		}
		return putMeta(tx, "policy_hash", pol.Hash())
	})
}

// ApplyOptions control Apply.
type ApplyOptions struct {
	Actor string
	// Approved skips the safety gate (the plan was approved).
	Approved bool
}

// Report is what a run did.
type Report struct {
	PlanID  string    `json:"planId,omitempty"`
	Done    int       `json:"done"`
	Failed  []Failure `json:"failed,omitempty"`
	Skipped int       `json:"skipped"`
	// Resumed counts actions finished from a previous run's outbox.
	Resumed int `json:"resumed,omitempty"`
}

// Failure is an action that did not succeed.
type Failure struct {
	Action   connectors.Action `json:"action"`
	Error    string            `json:"error"`
	Kind     string            `json:"kind"`
	Attempts int               `json:"attempts"`
}

// Add merges another report into r.
func (r *Report) Add(o *Report) {
	if o == nil {
		return
	}
	r.Done += o.Done
	r.Skipped += o.Skipped
	r.Failed = append(r.Failed, o.Failed...)
}

// ApplyPlan carries out a plan: safety gate, outbox, executor. A plan
// over the thresholds is saved as pending and an *ApprovalRequiredError
// returned; nothing changes then.
func (e *Engine) ApplyPlan(ctx context.Context, p *Plan, o ApplyOptions) (*Report, error) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	return e.applyLocked(ctx, p, o, nil)
}

// applyLocked is ApplyPlan with applyMu held. Workers in unsettled keep
// their open transition whatever happens (they have changes outside p).
func (e *Engine) applyLocked(ctx context.Context, p *Plan, o ApplyOptions, unsettled map[connectors.WorkerID]bool) (*Report, error) {
	b, err := e.startLocked(ctx, p, o, unsettled)
	if b == nil {
		if p.Empty() {
			return &Report{}, err
		}
		return nil, err
	}
	return e.await(b, p, unsettled)
}

// startLocked gates p, writes it to the outbox and hands it to the
// dispatcher, with applyMu held; the caller may release applyMu before it
// waits for the returned batch with await. It returns no batch when there
// is nothing to wait for: an empty plan (settled at once: the transitions
// recorded so far are carried out, as a resumed outbox may have finished
// them), a plan over the thresholds (saved as pending, an
// *ApprovalRequiredError returned) or an error.
func (e *Engine) startLocked(ctx context.Context, p *Plan, o ApplyOptions, unsettled map[connectors.WorkerID]bool) (*batch, error) {
	if p.Empty() {
		return nil, e.settle(p, &Report{}, unsettled, nil)
	}
	if p.ID == "" {
		p.ID = newPlanID(e.now())
	}
	if !o.Approved {
		if exceeded := CheckSafety(p, e.safety); len(exceeded) > 0 {
			if err := e.savePending(p, o.Actor, exceeded); err != nil {
				return nil, err
			}
			return nil, &ApprovalRequiredError{PlanID: p.ID, Exceeded: exceeded}
		}
	}
	items, err := e.enqueue(p, o.Actor)
	if err != nil {
		return nil, err
	}
	b := newBatch(ctx)
	e.disp.submit(b, items)
	return b, nil
}

// await waits for a batch startLocked returned and settles p's workers.
func (e *Engine) await(b *batch, p *Plan, unsettled map[connectors.WorkerID]bool) (*Report, error) {
	rep, err := b.wait()
	rep.PlanID = p.ID
	if err != nil {
		return rep, err
	}
	return rep, e.settle(p, rep, unsettled, nil)
}

func newPlanID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "p-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

func (e *Engine) savePending(p *Plan, actor string, exceeded []string) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		s := summaryDetails(p)
		s["exceeded"] = strings.Join(exceeded, "; ")
		if _, err := audit.Append(tx, &audit.Record{Type: "plan.pending", Actor: actor, PlanID: p.ID,
			Message: "plan exceeds safety thresholds; waiting for approval", Details: s}, e.now); err != nil {
			return err
		}
		// A newer pending plan replaces the older ones: approving an old
		// one later would apply a stale view of the same changes.
		old, err := pendingPlans(tx)
		if err != nil {
			return err
		}
		for _, sp := range old {
			sp.Status, sp.DecidedBy, sp.DecidedAt = PlanSuperseded, actor, e.now().UTC()
			if _, err := audit.Append(tx, &audit.Record{Type: "plan.superseded", Actor: actor, PlanID: sp.Plan.ID,
				Message: "pending plan replaced by " + p.ID}, e.now); err != nil {
				return err
			}
			if err := putJSON(tx, bucketPlans, []byte(sp.Plan.ID), sp); err != nil {
				return err
			}
		}
		return putJSON(tx, bucketPlans, []byte(p.ID), &SavedPlan{Plan: p, Status: PlanPending, Exceeded: exceeded, CreatedBy: actor})
	})
}

func summaryDetails(p *Plan) map[string]string {
	s := p.Summary()
	return map[string]string{
		"steps": fmt.Sprint(len(p.Steps)), "create": fmt.Sprint(s.Create), "grant": fmt.Sprint(s.Grant),
		"change": fmt.Sprint(s.Change), "revoke": fmt.Sprint(s.Revoke), "suspend": fmt.Sprint(s.Suspend),
		"restore": fmt.Sprint(s.Restore), "delete": fmt.Sprint(s.Delete), "policy_hash": p.PolicyHash,
		"fingerprint": p.Fingerprint(),
	}
}

// enqueue writes every step to the outbox, each with its audited intent,
// in one transaction: all or nothing.
func (e *Engine) enqueue(p *Plan, actor string) ([]OutboxItem, error) {
	var items []OutboxItem
	err := e.db.Update(func(tx *bolt.Tx) error {
		items = items[:0]
		if _, err := audit.Append(tx, &audit.Record{Type: "plan.applied", Actor: actor, PlanID: p.ID,
			Message: "plan accepted for execution", Details: summaryDetails(p)}, e.now); err != nil {
			return err
		}
		ob := tx.Bucket(bucketOutbox)
		for _, st := range p.Steps {
			a := st.Action
			if _, err := audit.Append(tx, &audit.Record{Type: "action.intent", Actor: actor, Worker: string(a.Person.Worker),
				App: a.App, Action: string(a.Kind), Entitlement: a.Entitlement.String(), Reason: a.Reason,
				PlanID: p.ID, ActionID: st.ID, Message: a.Detail}, e.now); err != nil {
				return err
			}
			seq, err := ob.NextSequence()
			if err != nil {
				return err
			}
			// Grace and the exception flag travel with the item so the
			// ledger can record them when the grant succeeds.
			it := OutboxItem{Seq: seq, PlanID: p.ID, StepID: st.ID, Action: a, Actor: actor, Grace: st.Grace,
				Exception: st.Exception, EnqueuedAt: e.now().UTC()}
			if err := putJSON(tx, bucketOutbox, seqKey(seq), &it); err != nil {
				return err
			}
			items = append(items, it)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: enqueue plan %s: %w", p.ID, err)
	}
	return items, nil
}

// settle clears the transition of workers whose every action in the plan
// succeeded: their joiner/mover/rehire/leaver is carried out. A
// transition that happened after the plan was computed is kept: the plan
// did not carry it out.
//
// only, when not nil, limits this to those workers (a plan made for them
// alone says nothing about the others).
func (e *Engine) settle(p *Plan, rep *Report, unsettled, only map[connectors.WorkerID]bool) error {
	failed := map[connectors.WorkerID]bool{}
	for id := range unsettled {
		failed[id] = true
	}
	for _, f := range rep.Failed {
		failed[f.Action.Person.Worker] = true
	}
	for _, d := range p.Deferred {
		failed[d.Action.Person.Worker] = true
	}
	// An app that could not be read got no actions: nobody's transition
	// can be called done.
	partial := len(p.Unreadable) > 0
	now := e.now().UTC()
	return e.db.Update(func(tx *bolt.Tx) error {
		ws, err := allWorkers(tx)
		if err != nil {
			return err
		}
		for _, w := range ws {
			if partial || w.Transition == "" || failed[w.ID] || (only != nil && !only[w.ID]) || w.TransitionAt.After(p.CreatedAt) || EffectiveStatus(&w.HR, w.Deleted, now, e.loc) == Pending {
				continue
			}
			w.Transition = ""
			if err := putWorker(tx, w); err != nil {
				return err
			}
		}
		return putMeta(tx, "last_apply", now.Format(time.RFC3339Nano))
	})
}

// Outbox returns the actions waiting in the outbox.
func (e *Engine) Outbox(ctx context.Context) ([]OutboxItem, error) {
	var items []OutboxItem
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		items, err = outboxItems(tx)
		return err
	})
	return items, err
}

// maxRetryAfter is the longest wait an app may ask for that the executor
// sits out. An app that asks for more (GitHub's daily invitation cap) gets
// the action reported as failed, rate_limited, and the next run or
// reconcile tries again, instead of a command that hangs for an hour.
const maxRetryAfter = 5 * time.Minute

// retry runs fn until it succeeds, fails terminally, the context ends or
// MaxAttempts is reached, sleeping with exponential backoff and jitter
// (at least as long as a RateLimited error's RetryAfter, up to
// maxRetryAfter) in between.
func (e *Engine) retry(ctx context.Context, fn func() error) error {
	_, err := e.retryCount(ctx, fn)
	return err
}

func (e *Engine) retryCount(ctx context.Context, fn func() error) (int, error) {
	var err error
	for attempt := 1; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			return attempt - 1, cerr
		}
		err = fn()
		if err == nil || !connectors.Retryable(err) || attempt >= e.exec.MaxAttempts || ctx.Err() != nil {
			return attempt, err
		}
		d := backoff(attempt, e.exec.BackoffBase, e.exec.BackoffMax)
		if ra := connectors.RetryAfter(err); ra > maxRetryAfter {
			return attempt, err
		} else if ra > d {
			d = ra
		}
		e.log.Debug("retrying after transient error", "wait", d, "attempt", attempt, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is base·2^(attempt-1) capped at max, with "equal jitter": half
// fixed, half random, so retries from many actions spread out.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base << (attempt - 1)
	if d <= 0 || d > max {
		d = max
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(mrand.Int64N(int64(half)))
}
