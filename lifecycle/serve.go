package lifecycle

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/connectors"
)

// RunOptions tune the long-running loop of `roster serve`.
type RunOptions struct {
	// ReconcileInterval is how often every app is read again and
	// everybody planned (drift, orphans, anything missed). 0: only at
	// start.
	ReconcileInterval time.Duration
	// TickInterval is how often the scheduler looks for start and end
	// dates that have come. Default 1m.
	TickInterval time.Duration
	// OnDone, if set, is called when an HR change announced with Notify
	// is carried out in every app: kind is the transition (joiner, mover,
	// leaver, rehire, or "update"), since the time of the HR change.
	OnDone func(kind string, since time.Time)
}

// runState is the server loop's bookkeeping.
type runState struct {
	ready  atomic.Bool
	wake   chan struct{}
	mu     sync.Mutex
	queued map[connectors.WorkerID]change // notified, not yet planned
	// waiting are workers whose items were still running when their
	// change came: planned again once they are idle.
	waiting map[connectors.WorkerID]change
	// inflight are workers whose planned actions are running, with the
	// change that caused them; failed marks those with a failed action.
	inflight map[connectors.WorkerID]change
	failed   map[connectors.WorkerID]bool
	batches  sync.WaitGroup
	opts     RunOptions
}

type change struct {
	kind  string
	since time.Time
}

// Ready reports whether the server loop has read every app at least once.
func (e *Engine) Ready() bool { return e.run.ready.Load() }

// Notify tells the server loop that id's HR record changed (transition
// "" for a change that is no transition). It never blocks; the worker is
// planned and carried out shortly, alone, against the apps' last known
// state.
func (e *Engine) Notify(id connectors.WorkerID, transition string) {
	if transition == "" {
		transition = "update"
	}
	r := &e.run
	r.mu.Lock()
	if r.queued == nil {
		r.queued = map[connectors.WorkerID]change{}
	}
	if _, ok := r.queued[id]; !ok {
		r.queued[id] = change{kind: transition, since: e.now()}
	}
	wake := r.wake
	r.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// Run is the server loop: it finishes the outbox and reconciles everybody
// once, then carries out each notified HR change as it comes, runs the
// scheduler every TickInterval and a full reconcile every
// ReconcileInterval, until ctx ends. It then waits for running actions:
// each either finishes or, interrupted, stays in the outbox for the next
// start. Errors of one reconcile are logged, not fatal.
func (e *Engine) Run(ctx context.Context, o RunOptions) error {
	if o.TickInterval <= 0 {
		o.TickInterval = time.Minute
	}
	r := &e.run
	r.mu.Lock()
	if r.wake != nil {
		r.mu.Unlock()
		return fmt.Errorf("lifecycle: Run called twice")
	}
	r.wake = make(chan struct{}, 1)
	r.opts = o
	if r.queued == nil {
		r.queued = map[connectors.WorkerID]change{}
	}
	r.waiting = map[connectors.WorkerID]change{}
	r.inflight = map[connectors.WorkerID]change{}
	r.failed = map[connectors.WorkerID]bool{}
	r.mu.Unlock()
	e.cache.enable()
	e.disp.setCallbacks(e.workerIdle, e.workerFailed)

	e.fullReconcile(ctx)
	e.reconcileQueued(ctx) // changes notified before the loop started
	tick := time.NewTicker(o.TickInterval)
	defer tick.Stop()
	var full <-chan time.Time
	if o.ReconcileInterval > 0 {
		t := time.NewTicker(o.ReconcileInterval)
		defer t.Stop()
		full = t.C
	}
	for {
		select {
		case <-ctx.Done():
			r.batches.Wait()
			return nil
		case <-r.wake:
			e.reconcileQueued(ctx)
		case <-tick.C:
			trs, err := e.Tick(ctx, "scheduler")
			if err != nil {
				e.log.Error("scheduler tick", "err", err)
				continue
			}
			for id, tr := range trs {
				e.Notify(id, tr)
			}
		case <-full:
			e.fullReconcile(ctx)
		}
	}
}

// fullReconcile reads every app and applies a plan for everybody.
func (e *Engine) fullReconcile(ctx context.Context) {
	start := e.now()
	p, _, err := e.Prepare(ctx, "reconcile")
	if err != nil {
		e.log.Error("full reconcile: plan", "err", err)
		return
	}
	if len(p.Unreadable) == 0 {
		e.run.ready.Store(true)
	}
	for app, msg := range p.Unreadable {
		e.log.Error("full reconcile: app not read; nothing planned there", "app", app, "err", msg)
	}
	rep, err := e.ApplyPlan(ctx, p, ApplyOptions{Actor: "reconcile"})
	if err != nil {
		e.log.Error("full reconcile: apply", "plan", p.ID, "err", err)
		return
	}
	e.log.Info("full reconcile done", "plan", p.ID, "done", rep.Done, "failed", len(rep.Failed),
		"deferred", len(p.Deferred), "orphans", len(p.Orphans), "took", e.now().Sub(start))
}

// workerIdle is the dispatcher's callback when a worker has nothing left
// running: its change is done (reported to OnDone unless an action
// failed), and a change that waited for it is planned now.
func (e *Engine) workerIdle(id connectors.WorkerID) {
	r := &e.run
	r.mu.Lock()
	fin, running := r.inflight[id]
	failed := r.failed[id]
	delete(r.inflight, id)
	delete(r.failed, id)
	c, ok := r.waiting[id]
	if ok {
		delete(r.waiting, id)
		if _, q := r.queued[id]; !q {
			r.queued[id] = c
		}
	}
	wake, onDone := r.wake, r.opts.OnDone
	r.mu.Unlock()
	if running && !failed && onDone != nil {
		onDone(fin.kind, fin.since)
	}
	if ok && wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// workerFailed is the dispatcher's callback when one of id's actions
// failed.
func (e *Engine) workerFailed(id connectors.WorkerID) {
	r := &e.run
	r.mu.Lock()
	if r.failed != nil {
		r.failed[id] = true
	}
	r.mu.Unlock()
}

// reconcileQueued plans the notified workers against the apps' last known
// state, gates, enqueues and starts the plan without waiting for it.
func (e *Engine) reconcileQueued(ctx context.Context) {
	r := &e.run
	r.mu.Lock()
	queued := r.queued
	r.queued = map[connectors.WorkerID]change{}
	ids := make([]connectors.WorkerID, 0, len(queued))
	for id, c := range queued {
		if e.disp.busy(id) {
			// Its running actions would be planned again: wait for them.
			if old, ok := r.waiting[id]; !ok || c.since.Before(old.since) {
				r.waiting[id] = c
			}
			continue
		}
		ids = append(ids, id)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	e.applyMu.Lock()
	p, err := e.planFor(ctx, ids)
	if err != nil {
		e.applyMu.Unlock()
		e.log.Error("reconcile workers: plan", "workers", len(ids), "err", err)
		return
	}
	only := make(map[connectors.WorkerID]bool, len(ids))
	for _, id := range ids {
		only[id] = true
	}
	if p.Empty() {
		e.applyMu.Unlock()
		if err := e.settle(p, &Report{}, nil, only); err != nil {
			e.log.Error("reconcile workers: settle", "err", err)
		}
		e.doneWithout(p, ids, queued)
		return
	}
	p.ID = newPlanID(e.now())
	if exceeded := CheckSafety(p, e.safety); len(exceeded) > 0 {
		err := e.savePending(p, "reconcile", exceeded)
		e.applyMu.Unlock()
		e.log.Warn("plan exceeds the safety thresholds; waiting for approval", "plan", p.ID, "exceeded", exceeded, "err", err)
		return
	}
	items, err := e.enqueue(p, "reconcile")
	if err != nil {
		e.applyMu.Unlock()
		e.log.Error("reconcile workers: enqueue", "err", err)
		return
	}
	// Each worker's change is done when its last action is (workerIdle);
	// those with nothing to do are done now.
	r.mu.Lock()
	for _, st := range p.Steps {
		w := st.Action.Person.Worker
		if c, ok := queued[w]; ok {
			r.inflight[w] = c
		}
	}
	r.mu.Unlock()
	b := newBatch(ctx)
	e.disp.submit(b, items)
	e.applyMu.Unlock()
	e.doneWithout(p, ids, queued)

	r.batches.Add(1)
	go func() {
		defer r.batches.Done()
		rep, err := b.wait()
		if err != nil {
			e.log.Warn("reconcile workers: stopped", "plan", p.ID, "err", err)
			return
		}
		if err := e.settle(p, rep, nil, only); err != nil {
			e.log.Error("reconcile workers: settle", "err", err)
		}
	}()
}

// doneWithout reports to OnDone the changes of workers the plan has no
// step for: nothing to do is done.
func (e *Engine) doneWithout(p *Plan, ids []connectors.WorkerID, changes map[connectors.WorkerID]change) {
	onDone := e.run.opts.OnDone
	if onDone == nil || len(p.Unreadable) > 0 {
		return
	}
	withSteps := map[connectors.WorkerID]bool{}
	for _, st := range p.Steps {
		withSteps[st.Action.Person.Worker] = true
	}
	for _, d := range p.Deferred {
		withSteps[d.Action.Person.Worker] = true // not done while its grace runs
	}
	for _, id := range ids {
		if c, ok := changes[id]; ok && !withSteps[id] {
			onDone(c.kind, c.since)
		}
	}
}

// planFor plans the given workers alone, against the cached app state,
// without any API call. Managers are read for manager chains.
func (e *Engine) planFor(ctx context.Context, ids []connectors.WorkerID) (*Plan, error) {
	pol := e.Policy()
	now := e.now().UTC()
	var p *Plan
	err := e.db.View(func(tx *bolt.Tx) error {
		byID := map[connectors.WorkerID]*Worker{}
		var ws []*Worker
		for _, id := range ids {
			w, err := getWorker(tx, id)
			if err != nil {
				return err
			}
			if w == nil {
				continue
			}
			ws = append(ws, w)
			byID[w.ID] = w
			// The manager chain, for policy and data transfer.
			for m, n := connectors.WorkerID(w.HR.Manager), 0; m != "" && n < 64; n++ {
				if _, ok := byID[m]; ok {
					break
				}
				mw, err := getWorker(tx, m)
				if err != nil || mw == nil {
					break
				}
				byID[m] = mw
				m = connectors.WorkerID(mw.HR.Manager)
			}
		}
		people := make([]connectors.Person, len(ws))
		for i, w := range ws {
			people[i] = Person(w, byID)
		}
		actual := e.cache.statesFor(people)
		var apps []string
		for _, name := range e.appNames {
			if actual[name] != nil {
				apps = append(apps, name)
			}
		}
		in := Input{Now: now, Apps: apps, Actual: actual, Retention: e.retention, Transfers: map[string]bool{}}
		for name, c := range e.apps {
			if _, ok := c.(connectors.DataTransferer); ok {
				in.Transfers[name] = true
			}
		}
		pl := newPlanner(in)
		if err := e.planWorkers(ctx, tx, pol, ws, byID, now, pl.add); err != nil {
			return err
		}
		if pl.err != nil {
			return pl.err
		}
		p = pl.finish()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: plan workers: %w", err)
	}
	p.PolicyHash = pol.Hash()
	if m := int(e.managed.Load()); m > p.Managed {
		p.Managed = m // thresholds are shares of the whole company
	}
	for _, name := range e.appNames {
		if _, ok := e.cache.known(name); !ok {
			if p.Unreadable == nil {
				p.Unreadable = map[string]string{}
			}
			p.Unreadable[name] = "not read yet"
		}
	}
	return p, nil
}
