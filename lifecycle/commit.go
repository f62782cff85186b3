package lifecycle

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// GroupCommit batches concurrent small writes to one data file into one
// bbolt transaction: one fsync for many HR changes, action outcomes, or
// writes of in-process apps that share the file (connectors.Env.Update). There is no timer: the first writer to
// arrive commits everything queued behind it, and writers that arrive
// while it commits form the next batch, so a lone write is never delayed
// and a burst costs one commit per batch. (bbolt's own Batch waits on a
// timer, which caps throughput at a few hundred commits per second.)
type GroupCommit struct {
	db      *bolt.DB
	mu      sync.Mutex
	pending []*commitReq
	running bool
}

type commitReq struct {
	fn   func(tx *bolt.Tx) error
	err  error
	done chan struct{}
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
func NewGroupCommit(db *bolt.DB) *GroupCommit { return &GroupCommit{db: db} }

// Update runs fn inside a write transaction shared with other concurrent
// callers and returns fn's error. fn must write nothing when it returns
// an error: the others' writes in the same transaction are committed
// regardless. A storage failure fails every request of the batch.
func (g *GroupCommit) Update(fn func(tx *bolt.Tx) error) error {
	db := g.db
	r := &commitReq{fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.running {
		g.mu.Unlock()
		<-r.done
		return r.err
	}
	g.running = true
	for {
		batch := g.pending
		g.pending = nil
		g.mu.Unlock()
		g.commit(db, batch)
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.running = false
			g.mu.Unlock()
			break
		}
	}
	<-r.done
	return r.err
}

func (g *GroupCommit) commit(db *bolt.DB, batch []*commitReq) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, r := range batch {
			r.err = r.fn(tx)
			var f *fatalError
			if errors.As(r.err, &f) {
				return f.err
			}
		}
		return nil
	})
	for _, r := range batch {
		if err != nil {
			r.err = err
		}
		close(r.done)
	}
}
