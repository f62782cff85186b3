package lifecycle

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
)

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
	err := e.commits.Update(func(tx *bolt.Tx) error {
		if _, err := audit.Append(tx, rec, e.now); err != nil {
			return fatal(err)
		}
		if err := tx.Bucket(bucketOutbox).Delete(seqKey(it.Seq)); err != nil {
			return fatal(err)
		}
		if outcome == "ok" {
			return fatal(recordOutcome(tx, a, e.now().UTC(), it.Grace, it.Exception))
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
