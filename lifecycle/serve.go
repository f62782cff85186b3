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
	// change that caused them; failed marks those with an action that
	// failed or was left in the outbox.
	inflight map[connectors.WorkerID]change
	failed   map[connectors.WorkerID]bool
	// recent are the destructive actions per-worker plans carried out in
	// the last safetyWindow: the safety gate counts them together.
	recent  []destructive
	batches sync.WaitGroup
	opts    RunOptions
}

// safetyWindow is how far back the server's safety gate looks: a flood of
// leavers arriving one by one is gated like one big plan.
const safetyWindow = time.Hour

type destructive struct {
	at     time.Time
	worker connectors.WorkerID
	kind   connectors.ActionKind
}

type change struct {
	kind  string
	since time.Time
	gen   uint64 // the dispatcher generation carrying it out
}

// rank orders transitions for Notify: when several changes of one worker
// are pending, the strongest names them.
func rank(kind string) int {
	switch kind {
	case Leaver:
		return 4
	case Rehire:
		return 3
	case Joiner:
		return 2
	case Mover:
		return 1
	}
	return 0
}

// Ready reports whether the server loop has finished its start: the
// store is open, the policy loaded, the outbox left by the last run
// resumed and a first plan made (even if some app could not be read).
func (e *Engine) Ready() bool { return e.run.ready.Load() }

// Notify tells the server loop that id's HR record changed (transition
// "" for a change that is no transition). It never blocks; the worker is
// planned and carried out shortly, alone, against the apps' last known
// state. Several changes before that count as one, named by the
// strongest (a leaver over a mover), timed from the first.
func (e *Engine) Notify(id connectors.WorkerID, transition string) {
	if transition == "" {
		transition = "update"
	}
	r := &e.run
	r.mu.Lock()
	if r.queued == nil {
		r.queued = map[connectors.WorkerID]change{}
	}
	c, ok := r.queued[id]
	if !ok {
		c = change{kind: transition, since: e.now()}
	} else if rank(transition) > rank(c.kind) {
		c.kind = transition
	}
	r.queued[id] = c
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

// fullReconcile finishes what the outbox holds, waits for running
// actions (so the apps' state it reads includes them), reads every app,
// plans everybody and starts the plan without waiting for it, so HR
// changes keep flowing while it runs. A plan over the thresholds is saved
// for approval.
func (e *Engine) fullReconcile(ctx context.Context) {
	start := e.now()
	e.applyMu.Lock()
	resumed, err := e.drain(ctx)
	if err != nil {
		e.applyMu.Unlock()
		e.log.Error("full reconcile: finish the outbox", "err", err)
		return
	}
	e.disp.waitIdle()
	p, _, err := e.prepareLocked(ctx, "reconcile")
	e.run.ready.Store(true)
	if err != nil {
		e.applyMu.Unlock()
		e.log.Error("full reconcile: plan", "err", err)
		return
	}
	for app, msg := range p.Unreadable {
		e.log.Error("full reconcile: app not read; nothing planned there", "app", app, "err", msg)
	}
	if p.Empty() {
		err := e.settle(p, &Report{}, nil, nil)
		e.applyMu.Unlock()
		if err != nil {
			e.log.Error("full reconcile: settle", "err", err)
		}
		e.log.Info("full reconcile done", "resumed", resumed.Done+len(resumed.Failed)+resumed.Skipped, "changes", 0,
			"deferred", len(p.Deferred), "orphans", len(p.Orphans), "took", e.now().Sub(start))
		return
	}
	p.ID = newPlanID(e.now())
	if exceeded := CheckSafety(p, e.safety); len(exceeded) > 0 {
		if id, ok := e.samePending(p); ok {
			e.applyMu.Unlock()
			e.log.Warn("full reconcile: plan exceeds the safety thresholds; the same changes already wait for approval", "plan", id, "exceeded", exceeded)
			return
		}
		err := e.savePending(p, "reconcile", exceeded)
		e.applyMu.Unlock()
		e.log.Warn("full reconcile: plan exceeds the safety thresholds; saved for approval", "plan", p.ID, "exceeded", exceeded, "err", err)
		return
	}
	items, err := e.enqueue(p, "reconcile")
	if err != nil {
		e.applyMu.Unlock()
		e.log.Error("full reconcile: enqueue", "err", err)
		return
	}
	b := newBatch(ctx)
	e.disp.submit(b, items)
	e.applyMu.Unlock()
	r := &e.run
	r.batches.Add(1)
	go func() {
		defer r.batches.Done()
		rep, err := b.wait()
		if err != nil {
			e.log.Warn("full reconcile: stopped", "plan", p.ID, "err", err)
			return
		}
		if err := e.settle(p, rep, nil, nil); err != nil {
			e.log.Error("full reconcile: settle", "err", err)
		}
		e.log.Info("full reconcile done", "plan", p.ID, "resumed", resumed.Done+len(resumed.Failed)+resumed.Skipped,
			"done", rep.Done, "failed", len(rep.Failed), "deferred", len(p.Deferred), "orphans", len(p.Orphans), "took", e.now().Sub(start))
	}()
}

// workerIdle is the dispatcher's callback when a worker has nothing left
// running (generation gen ended): its change is done (reported to OnDone
// unless an action failed or was left in the outbox), and a change that
// waited for it is planned now.
func (e *Engine) workerIdle(id connectors.WorkerID, gen uint64) {
	r := &e.run
	r.mu.Lock()
	fin, running := r.inflight[id]
	running = running && fin.gen == gen // else: a later generation's change
	failed := r.failed[id]
	if running {
		delete(r.inflight, id)
		delete(r.failed, id)
	}
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
// failed or was left in the outbox.
func (e *Engine) workerFailed(id connectors.WorkerID) {
	r := &e.run
	r.mu.Lock()
	if r.failed != nil {
		r.failed[id] = true
	}
	r.mu.Unlock()
}

// gateRecent checks p together with the destructive actions per-worker
// plans carried out in the last safetyWindow.
func (e *Engine) gateRecent(p *Plan) []string {
	r := &e.run
	now := e.now()
	r.mu.Lock()
	keep := r.recent[:0]
	for _, d := range r.recent {
		if now.Sub(d.at) < safetyWindow {
			keep = append(keep, d)
		}
	}
	r.recent = keep
	all := &Plan{Managed: p.Managed, Steps: append([]Step(nil), p.Steps...)}
	for _, d := range r.recent {
		all.Steps = append(all.Steps, Step{Action: connectors.Action{Kind: d.kind, Person: connectors.Person{Worker: d.worker}}})
	}
	r.mu.Unlock()
	return CheckSafety(all, e.safety)
}

func (e *Engine) noteDestructive(p *Plan) {
	r := &e.run
	now := e.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range p.Steps {
		switch st.Action.Kind {
		case connectors.SuspendAccount, connectors.Revoke, connectors.DeleteAccount:
			r.recent = append(r.recent, destructive{at: now, worker: st.Action.Person.Worker, kind: st.Action.Kind})
		}
	}
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
			if old, ok := r.waiting[id]; ok {
				if old.since.Before(c.since) {
					c.since = old.since
				}
				if rank(old.kind) > rank(c.kind) {
					c.kind = old.kind
				}
			}
			r.waiting[id] = c
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
	if exceeded := e.gateRecent(p); len(exceeded) > 0 {
		// Held: the next full reconcile plans these workers again, with
		// everybody, and saves that plan for approval.
		e.applyMu.Unlock()
		e.log.Warn("changes exceed the safety thresholds; held for the next full reconcile's plan, which will wait for approval",
			"workers", len(ids), "exceeded", exceeded)
		return
	}
	items, err := e.enqueue(p, "reconcile")
	if err != nil {
		e.applyMu.Unlock()
		e.log.Error("reconcile workers: enqueue", "err", err)
		return
	}
	e.noteDestructive(p)
	// Each worker's change is done when its last action is (workerIdle);
	// those with nothing to do are done now.
	r.mu.Lock()
	for _, st := range p.Steps {
		w := st.Action.Person.Worker
		if c, ok := queued[w]; ok {
			c.gen = e.disp.nextGen(w)
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
	// An app the last full reconcile could not read is read now: a leaver
	// must lose access there too as soon as it answers.
	missing := map[string]string{}
	for _, name := range e.appNames {
		if _, ok := e.cache.known(name); ok {
			continue
		}
		var st *connectors.State
		err := e.retry(ctx, func() error {
			var err error
			st, err = e.apps[name].Snapshot(ctx)
			return err
		})
		if err != nil {
			missing[name] = err.Error()
			continue
		}
		e.cache.refresh(map[string]*connectors.State{name: st})
	}
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
		pl := newPlanner(e.input(now, e.cache.statesFor(people)))
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
	for name, msg := range missing {
		if p.Unreadable == nil {
			p.Unreadable = map[string]string{}
		}
		p.Unreadable[name] = msg
	}
	return p, nil
}
