package lifecycle

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GroupCommit batches concurrent small writes to one data file into one
// bbolt transaction: one fsync for many HR changes, action outcomes, or
// writes of in-process apps that share the file (connectors.Env.Update).
// The first writer to arrive leads: it commits everything queued behind
// it, and writers that arrive while it commits form the next batch, led
// by one of them. A lone writer is never delayed. When the last batch had
// several writers, the leader waits for as many to queue again, but never
// longer than half the last commit took: without that, N writers released
// together by one commit split into a batch of 1 (the first one back) and
// a batch of N-1, halving the throughput. (bbolt's own Batch waits on a
// fixed timer, which caps throughput at a few hundred commits per second.)
type GroupCommit struct {
	db      *bolt.DB
	mu      sync.Mutex
	pending []*commitReq
	running bool
	// arrived is signalled (never blocking) when a request queues while a
	// leader is running.
	arrived chan struct{}
	// lastBatch and lastTook describe the previous commit (guarded by mu).
	lastBatch int
	lastTook  time.Duration
}

// maxGather caps how long a leader waits for writers to join its batch.
const maxGather = 5 * time.Millisecond

type commitReq struct {
	fn   func(tx *bolt.Tx) error
	err  error
	done chan struct{}
	lead chan struct{} // closed when this request is to lead the next batch
}

// fatalError marks an error that must abort the whole transaction (a
// storage failure), as opposed to a request's own refusal (a conflict, a
// bad record), which fails that request only.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

// fatal wraps err (if any) as a transaction-aborting error.
func fatal(err error) error {
	if err == nil {
		return nil
	}
	return &fatalError{err}
}

// NewGroupCommit returns a group committer for db.
func NewGroupCommit(db *bolt.DB) *GroupCommit {
	return &GroupCommit{db: db, arrived: make(chan struct{}, 1)}
}

// Update runs fn inside a write transaction shared with other concurrent
// callers and returns fn's error. fn must write nothing when it returns
// an error, and the others' writes in the same transaction are committed
// regardless; an error wrapped by fatal (a storage failure half-way
// through) instead rolls the transaction back, and then every request of
// the batch is run again alone, so one bad request never fails the
// others.
func (g *GroupCommit) Update(fn func(tx *bolt.Tx) error) error {
	r := &commitReq{fn: fn, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.running {
		g.mu.Unlock()
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.done:
			return r.err
		case <-r.lead:
		}
	} else {
		g.running = true
		g.mu.Unlock()
	}
	// This request leads: commit what is queued (itself included), then
	// hand the lead to the next waiting request, if any, and return.
	g.gather()
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	start := time.Now()
	g.commit(batch)
	took := time.Since(start)
	g.mu.Lock()
	g.lastBatch, g.lastTook = len(batch), took
	if len(g.pending) > 0 {
		close(g.pending[0].lead)
	} else {
		g.running = false
	}
	g.mu.Unlock()
	<-r.done
	return r.err
}

// gather waits, as the type's doc says, for as many writers as the last
// batch had.
func (g *GroupCommit) gather() {
	select {
	case <-g.arrived: // a stale signal from an earlier batch
	default:
	}
	g.mu.Lock()
	want, wait, n := g.lastBatch, min(g.lastTook/2, maxGather), len(g.pending)
	g.mu.Unlock()
	if want <= 1 || n >= want || wait <= 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-g.arrived:
			g.mu.Lock()
			n = len(g.pending)
			g.mu.Unlock()
			if n >= want {
				return
			}
		case <-timer.C:
			return
		}
	}
}

func (g *GroupCommit) commit(batch []*commitReq) {
	err := g.db.Update(func(tx *bolt.Tx) error {
		for _, r := range batch {
			r.err = run(r.fn, tx)
			var f *fatalError
			if errors.As(r.err, &f) {
				return f.err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		// Rolled back: run each request alone so only the culprit fails.
		for _, r := range batch {
			r.err = g.db.Update(func(tx *bolt.Tx) error { return run(r.fn, tx) })
			close(r.done)
		}
		return
	}
	for _, r := range batch {
		if err != nil {
			r.err = err
		}
		close(r.done)
	}
}

// run calls fn, turning a panic into a fatal error so the committer never
// stays locked.
func run(fn func(tx *bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fatal(fmt.Errorf("panic in write: %v", p))
		}
	}()
	return fn(tx)
}
