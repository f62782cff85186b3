package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
)

// chain is the outbox items of one worker in one app, in plan order: they
// run one after another, because a grant needs the account first.
type chain struct {
	app   string
	items []OutboxItem
}

// drain carries out everything in the outbox and returns what happened.
// Chains of different workers run concurrently, at most Concurrency per
// app; a leaver's suspension is started before anything else. An item is
// removed from the outbox only in the transaction that audits its
// outcome, so a crash at any point leaves it to be retried (connectors are
// idempotent). A failed audit write stops the drain with an error.
func (e *Engine) drain(ctx context.Context) (*Report, error) {
	items, err := e.Outbox(ctx)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: read outbox: %w", err)
	}
	rep := &Report{}
	if len(items) == 0 {
		return rep, nil
	}
	byKey := map[string]*chain{}
	var chains []*chain
	for _, it := range items {
		k := string(it.Action.Person.Worker) + "\x00" + it.Action.App
		c := byKey[k]
		if c == nil {
			c = &chain{app: it.Action.App}
			byKey[k] = c
			chains = append(chains, c)
		}
		c.items = append(c.items, it)
	}
	// Leavers first: every app suspends them before anything else runs.
	sort.SliceStable(chains, func(i, j int) bool {
		si := chains[i].items[0].Action.Kind == connectors.SuspendAccount
		sj := chains[j].items[0].Action.Kind == connectors.SuspendAccount
		return si && !sj
	})
	queues := map[string]chan *chain{}
	for _, c := range chains {
		if queues[c.app] == nil {
			queues[c.app] = make(chan *chain, len(chains))
		}
		queues[c.app] <- c
	}
	var (
		mu       sync.Mutex
		fatal    error
		wg       sync.WaitGroup
		runCtx   context.Context
		cancelFn context.CancelFunc
	)
	runCtx, cancelFn = context.WithCancel(ctx)
	defer cancelFn()
	for app, q := range queues {
		close(q)
		n := e.exec.Concurrency
		if v := e.exec.PerApp[app]; v > 0 {
			n = v
		}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range q {
					r, err := e.runChain(runCtx, c)
					mu.Lock()
					rep.Add(r)
					if err != nil && fatal == nil {
						fatal = err
						cancelFn()
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if fatal == nil {
		fatal = ctx.Err()
	}
	return rep, fatal
}

func (e *Engine) runChain(ctx context.Context, c *chain) (*Report, error) {
	rep := &Report{}
	conn, ok := e.apps[c.app]
	for i, it := range c.items {
		if !ok {
			err := connectors.Errorf(connectors.Invalid, "apply", "connector %q is not configured any more", c.app)
			if aerr := e.finish(it, "failed", err, 0); aerr != nil {
				return rep, aerr
			}
			rep.Failed = append(rep.Failed, Failure{Action: it.Action, Error: err.Error(), Kind: connectors.Invalid.String()})
			continue
		}
		attempts, err := e.retryCount(ctx, func() error { return conn.Apply(ctx, it.Action) })
		if err != nil && ctx.Err() != nil {
			// Interrupted: the item stays in the outbox for the next run.
			return rep, ctx.Err()
		}
		if err == nil {
			if aerr := e.finish(it, "ok", nil, attempts); aerr != nil {
				return rep, aerr
			}
			rep.Done++
			continue
		}
		if aerr := e.finish(it, "failed", err, attempts); aerr != nil {
			return rep, aerr
		}
		e.log.Warn("action failed", "action", it.Action.String(), "attempts", attempts, "kind", connectors.KindOf(err).String(), "err", err)
		rep.Failed = append(rep.Failed, Failure{Action: it.Action, Error: err.Error(), Kind: connectors.KindOf(err).String(), Attempts: attempts})
		// What follows in this chain depends on this step: skip it; the
		// next run plans it again from the apps' real state.
		for _, rest := range c.items[i+1:] {
			if aerr := e.finish(rest, "skipped", errors.New("an earlier action for this worker in this app failed"), 0); aerr != nil {
				return rep, aerr
			}
			rep.Skipped++
		}
		return rep, nil
	}
	return rep, nil
}

// finish audits an item's outcome, removes it from the outbox and, on
// success, updates the ledger — in one transaction.
func (e *Engine) finish(it OutboxItem, outcome string, cause error, attempts int) error {
	a := it.Action
	rec := &audit.Record{Type: "action.outcome", Actor: it.Actor, Worker: string(a.Person.Worker), App: a.App,
		Action: string(a.Kind), Entitlement: a.Entitlement.String(), Reason: a.Reason, Outcome: outcome,
		PlanID: it.PlanID, ActionID: it.StepID}
	if attempts > 0 {
		rec.Details = map[string]string{"attempts": fmt.Sprint(attempts)}
	}
	if cause != nil {
		rec.Message = cause.Error()
		if rec.Details == nil {
			rec.Details = map[string]string{}
		}
		rec.Details["error_kind"] = connectors.KindOf(cause).String()
	}
	err := e.db.Update(func(tx *bolt.Tx) error {
		if _, err := audit.Append(tx, rec, e.now); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutbox).Delete(seqKey(it.Seq)); err != nil {
			return err
		}
		if outcome == "ok" {
			return recordOutcome(tx, a, e.now().UTC(), it.Grace, it.Exception)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lifecycle: record outcome of %s: %w", a, err)
	}
	e.log.Debug("action finished", "app", a.App, "worker", a.Person.Worker, "kind", a.Kind,
		"entitlement", a.Entitlement.String(), "outcome", outcome, "attempts", attempts)
	return nil
}
