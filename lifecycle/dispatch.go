package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rosterhq/roster/connectors"
)

// The dispatcher carries out outbox items. Items of one worker in one app
// form a chain that runs in plan order (a grant needs the account first);
// chains run concurrently, at most the app's concurrency at a time, and a
// chain that starts with a suspension (a leaver) jumps the queue. New
// items can be submitted while others run: a chain that is running picks
// up the items queued behind it, so a worker's changes never overtake
// each other. No goroutine outlives its work: each app's workers exit
// when its queue is empty.
type dispatcher struct {
	e *Engine

	mu        sync.Mutex
	pending   map[chainKey][]queued
	scheduled map[chainKey]bool
	known     map[uint64]bool // outbox seqs submitted and not finished
	perWorker map[connectors.WorkerID]int
	// gen counts, per worker, the times it went from idle to busy: an
	// idle callback names the generation that ended.
	gen  map[connectors.WorkerID]uint64
	idle *sync.Cond // broadcast when nothing is in flight
	apps map[string]*appQueue
	// onIdle is called (outside the lock) when a worker has nothing left
	// in flight; onFail when one of its actions failed.
	onIdle func(connectors.WorkerID, uint64)
	onFail func(connectors.WorkerID)
}

type chainKey struct {
	worker connectors.WorkerID
	app    string
}

type queued struct {
	it OutboxItem
	b  *batch
}

type appQueue struct {
	urgent, normal []chainKey
	workers        int
}

// batch tracks the items one caller submitted, and what became of them.
type batch struct {
	ctx  context.Context
	mu   sync.Mutex
	rep  Report
	err  error
	left int
	done chan struct{}
}

func newBatch(ctx context.Context) *batch {
	return &batch{ctx: ctx, done: make(chan struct{})}
}

// wait blocks until every item of the batch has finished or was left in
// the outbox, and returns the report.
func (b *batch) wait() (*Report, error) {
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	rep := b.rep
	return &rep, b.err
}

func newDispatcher(e *Engine) *dispatcher {
	d := &dispatcher{e: e, pending: map[chainKey][]queued{}, scheduled: map[chainKey]bool{},
		known: map[uint64]bool{}, perWorker: map[connectors.WorkerID]int{}, gen: map[connectors.WorkerID]uint64{},
		apps: map[string]*appQueue{}}
	d.idle = sync.NewCond(&d.mu)
	return d
}

// nextGen is the generation id's next submission belongs to. Callers
// that submit must hold the engine's applyMu, so it cannot change in
// between.
func (d *dispatcher) nextGen(id connectors.WorkerID) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.perWorker[id] == 0 {
		return d.gen[id] + 1
	}
	return d.gen[id]
}

// waitIdle blocks until nothing is in flight.
func (d *dispatcher) waitIdle() {
	d.mu.Lock()
	for len(d.known) > 0 {
		d.idle.Wait()
	}
	d.mu.Unlock()
}

// submit queues items (in outbox order) under batch b. Items already
// submitted by someone else are skipped. The batch's done channel closes
// when all of its items are through.
func (d *dispatcher) submit(b *batch, items []OutboxItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.submitLocked(b, items)
}

func (d *dispatcher) submitLocked(b *batch, items []OutboxItem) {
	for _, it := range items {
		if d.known[it.Seq] {
			continue
		}
		d.known[it.Seq] = true
		b.left++
		k := chainKey{it.Action.Person.Worker, it.Action.App}
		d.pending[k] = append(d.pending[k], queued{it, b})
		if d.perWorker[k.worker] == 0 {
			d.gen[k.worker]++
		}
		d.perWorker[k.worker]++
		if d.scheduled[k] {
			continue
		}
		d.scheduled[k] = true
		q := d.apps[k.app]
		if q == nil {
			q = &appQueue{}
			d.apps[k.app] = q
		}
		if it.Action.Kind == connectors.SuspendAccount {
			q.urgent = append(q.urgent, k)
		} else {
			q.normal = append(q.normal, k)
		}
		if q.workers < d.e.concurrency(k.app) {
			q.workers++
			go d.work(k.app, q)
		}
	}
	if b.left == 0 {
		close(b.done)
	}
}

// busy reports whether id has items in flight.
func (d *dispatcher) busy(id connectors.WorkerID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.perWorker[id] > 0
}

func (d *dispatcher) work(app string, q *appQueue) {
	for {
		d.mu.Lock()
		var k chainKey
		switch {
		case len(q.urgent) > 0:
			k, q.urgent = q.urgent[0], q.urgent[1:]
		case len(q.normal) > 0:
			k, q.normal = q.normal[0], q.normal[1:]
		default:
			q.workers--
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		d.runChain(k)
	}
}

// runChain runs k's items until none are left, including those queued
// while it runs. After a failure, the rest of what it had taken is
// skipped: it depends on the failed step, and the next plan redoes it
// from the app's real state.
func (d *dispatcher) runChain(k chainKey) {
	for {
		d.mu.Lock()
		items := d.pending[k]
		delete(d.pending, k)
		if len(items) == 0 {
			delete(d.scheduled, k)
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		// An outcome is audited while the chain's next action already
		// runs: the next one waits for the previous action's answer, not
		// for its audit commit. An item leaves the outbox only once its
		// outcome is audited, and a crash in between repeats at most that
		// (idempotent) action.
		failed := false
		var audits sync.WaitGroup
		for _, q := range items {
			o := d.e.attempt(q.b.ctx, q.it, failed)
			if o.result.failure != nil {
				failed = true
			}
			audits.Add(1)
			go func() {
				defer audits.Done()
				d.complete(q, d.e.record(o))
			}()
		}
		audits.Wait()
	}
}

// itemResult is what became of one item.
type itemResult struct {
	done    bool     // succeeded, outcome audited
	skipped bool     // skipped, outcome audited
	failure *Failure // failed, outcome audited
	left    bool     // not tried or interrupted: still in the outbox
	err     error    // why it was left (context end, audit write failure)
}

func (d *dispatcher) complete(q queued, r itemResult) {
	d.mu.Lock()
	delete(d.known, q.it.Seq)
	if len(d.known) == 0 {
		d.idle.Broadcast()
	}
	w := q.it.Action.Person.Worker
	d.perWorker[w]--
	idle := d.perWorker[w] == 0
	gen := d.gen[w]
	if idle {
		delete(d.perWorker, w)
	}
	b := q.b
	b.mu.Lock()
	switch {
	case r.done:
		b.rep.Done++
	case r.skipped:
		b.rep.Skipped++
	case r.failure != nil:
		b.rep.Failed = append(b.rep.Failed, *r.failure)
	}
	if r.err != nil && b.err == nil {
		b.err = r.err
	}
	b.left--
	last := b.left == 0
	b.mu.Unlock()
	onIdle, onFail := d.onIdle, d.onFail
	d.mu.Unlock()
	if (r.failure != nil || r.left) && onFail != nil {
		onFail(w)
	}
	if last {
		close(b.done)
	}
	if idle && onIdle != nil {
		onIdle(w, gen)
	}
}

// attempted is an item tried, its outcome not yet audited.
type attempted struct {
	it       OutboxItem
	outcome  string // ok, failed, skipped; "" when left in the outbox
	cause    error
	attempts int
	result   itemResult
}

// attempt carries out one outbox item (or decides to skip it, or to
// leave it in the outbox when the context ended).
func (e *Engine) attempt(ctx context.Context, it OutboxItem, skip bool) attempted {
	if err := ctx.Err(); err != nil {
		return attempted{it: it, result: itemResult{left: true, err: err}}
	}
	if skip {
		return attempted{it: it, outcome: "skipped", cause: errors.New("an earlier action for this worker in this app failed"),
			result: itemResult{skipped: true}}
	}
	conn, ok := e.apps[it.Action.App]
	var (
		attempts int
		err      error
	)
	if !ok {
		err = connectors.Errorf(connectors.Invalid, "apply", "connector %q is not configured any more", it.Action.App)
	} else {
		attempts, err = e.retryCount(ctx, func() error { return conn.Apply(ctx, it.Action) })
		if err != nil && ctx.Err() != nil {
			// Interrupted: the item stays in the outbox for the next run.
			return attempted{it: it, result: itemResult{left: true, err: ctx.Err()}}
		}
	}
	if err == nil {
		// The cache learns of it here, in chain order (the outcome is
		// audited later, concurrently): a grant never lands before the
		// account it belongs to.
		e.cache.apply(it.Action)
		return attempted{it: it, outcome: "ok", attempts: attempts, result: itemResult{done: true}}
	}
	e.log.Warn("action failed", "action", it.Action.String(), "attempts", attempts, "kind", connectors.KindOf(err).String(), "err", err)
	return attempted{it: it, outcome: "failed", cause: err, attempts: attempts,
		result: itemResult{failure: &Failure{Action: it.Action, Error: err.Error(), Kind: connectors.KindOf(err).String(), Attempts: attempts}}}
}

// record audits an attempted item's outcome and takes it out of the
// outbox; if that fails, the item is left in the outbox.
func (e *Engine) record(o attempted) itemResult {
	if o.outcome == "" {
		return o.result
	}
	if err := e.finish(o.it, o.outcome, o.cause, o.attempts); err != nil {
		return itemResult{left: true, err: err}
	}
	return o.result
}

// concurrency is the number of concurrent actions for app.
func (e *Engine) concurrency(app string) int {
	if v := e.exec.PerApp[app]; v > 0 {
		return v
	}
	return e.exec.Concurrency
}

// drain carries out everything in the outbox that is not already running
// and returns what happened. An item is removed from the outbox only in
// the transaction that audits its outcome, so a crash at any point leaves
// it to be retried (connectors are idempotent). A failed audit write or
// the end of ctx leaves the remaining items in the outbox and is
// returned.
func (e *Engine) drain(ctx context.Context) (*Report, error) {
	b := newBatch(ctx)
	// The outbox is read under the dispatcher's lock: an item that
	// finishes meanwhile is either still known (skipped) or already gone
	// from the outbox, never submitted twice.
	e.disp.mu.Lock()
	items, err := e.Outbox(ctx)
	if err != nil {
		e.disp.mu.Unlock()
		return nil, fmt.Errorf("lifecycle: read outbox: %w", err)
	}
	e.disp.submitLocked(b, items)
	e.disp.mu.Unlock()
	return b.wait()
}

func (d *dispatcher) setCallbacks(onIdle func(connectors.WorkerID, uint64), onFail func(connectors.WorkerID)) {
	d.mu.Lock()
	d.onIdle, d.onFail = onIdle, onFail
	d.mu.Unlock()
}
