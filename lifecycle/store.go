package lifecycle

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
)

// Bucket names in the data file. The audit bucket belongs to package audit.
var (
	bucketWorkers = []byte("workers")
	bucketLedger  = []byte("ledger")
	bucketOutbox  = []byte("outbox")
	bucketPlans   = []byte("plans")
	bucketMeta    = []byte("meta")
)

// DBOptions are the bbolt options Roster opens its data file with.
// Timeout bounds the wait for another process's lock.
//
// The freelist is not written on every commit (NoFreelistSync, as etcd
// does): bbolt rebuilds it from the pages when the file is opened. Every
// commit is still fsync'd, so nothing acknowledged is lost on a crash;
// the saving is a page write or more per commit, which on this workload
// (many small group commits) is a quarter of the write time.
func DBOptions(timeout time.Duration) *bolt.Options {
	return &bolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
}

// InitStore creates the engine's buckets (and the audit bucket) if missing.
func InitStore(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketWorkers, bucketLedger, bucketOutbox, bucketPlans, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		if err := initIndexes(tx); err != nil {
			return err
		}
		return audit.Init(tx)
	})
}

func getJSON(tx *bolt.Tx, bucket []byte, key []byte, v any) (bool, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return false, fmt.Errorf("bucket %s missing: data file not initialised", bucket)
	}
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

func putJSON(tx *bolt.Tx, bucket []byte, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.Bucket(bucket).Put(key, raw)
}

func getWorker(tx *bolt.Tx, id connectors.WorkerID) (*Worker, error) {
	var w Worker
	ok, err := getJSON(tx, bucketWorkers, []byte(id), &w)
	if err != nil || !ok {
		return nil, err
	}
	return &w, nil
}

func putWorker(tx *bolt.Tx, w *Worker) error {
	return putJSON(tx, bucketWorkers, []byte(w.ID), w)
}

// allWorkers returns every stored worker, sorted by id (bbolt key order).
func allWorkers(tx *bolt.Tx) ([]*Worker, error) { return decodeAll[Worker](tx, bucketWorkers) }

// decodeAll decodes every value of bucket, in key order.
func decodeAll[T any](tx *bolt.Tx, bucket []byte) ([]*T, error) {
	var out []*T
	err := tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		x := new(T)
		if err := json.Unmarshal(v, x); err != nil {
			return fmt.Errorf("decode %s/%x: %w", bucket, k, err)
		}
		out = append(out, x)
		return nil
	})
	return out, err
}

// storedLedger is Ledger's on-disk form (JSON needs string keys).
type storedLedger map[string][]LedgerEntry

func getLedger(tx *bolt.Tx, id connectors.WorkerID) (Ledger, error) {
	var s storedLedger
	if _, err := getJSON(tx, bucketLedger, []byte(id), &s); err != nil {
		return nil, err
	}
	return s.ledger(), nil
}

// ledger converts the stored form to the planner's.
func (s storedLedger) ledger() Ledger {
	l := make(Ledger, len(s))
	for app, es := range s {
		m := make(map[connectors.EntitlementKey]LedgerEntry, len(es))
		for _, e := range es {
			m[e.Entitlement.Key()] = e
		}
		l[app] = m
	}
	return l
}

func putLedger(tx *bolt.Tx, id connectors.WorkerID, l Ledger) error {
	s := storedLedger{}
	for app, m := range l {
		if len(m) == 0 {
			continue
		}
		es := make([]LedgerEntry, 0, len(m))
		for _, e := range m {
			es = append(es, e)
		}
		sort.Slice(es, func(i, j int) bool { return es[i].Entitlement.Less(es[j].Entitlement) })
		s[app] = es
	}
	if len(s) == 0 {
		return tx.Bucket(bucketLedger).Delete([]byte(id))
	}
	return putJSON(tx, bucketLedger, []byte(id), s)
}

// recordOutcome updates the ledger after a successful action.
func recordOutcome(tx *bolt.Tx, a connectors.Action, now time.Time, grace time.Duration, exception bool) error {
	l, err := getLedger(tx, a.Person.Worker)
	if err != nil {
		return err
	}
	m := l[a.App]
	if m == nil {
		m = map[connectors.EntitlementKey]LedgerEntry{}
		l[a.App] = m
	}
	switch a.Kind {
	case connectors.CreateAccount, connectors.RestoreAccount:
		if old, ok := m[connectors.Account.Key()]; ok && a.Kind == connectors.RestoreAccount {
			old.Grace = grace
			m[connectors.Account.Key()] = old
		} else {
			m[connectors.Account.Key()] = LedgerEntry{Entitlement: a.Entitlement, Since: now, Why: a.Detail, Grace: grace}
		}
	case connectors.Grant:
		e := LedgerEntry{Entitlement: a.Entitlement, Since: now, Why: a.Detail, Grace: grace, Exception: exception}
		if old, ok := m[a.Entitlement.Key()]; ok && a.Entitlement.IsAccount() {
			e.Since = old.Since
		}
		m[a.Entitlement.Key()] = e
	case connectors.Revoke:
		delete(m, a.Entitlement.Key())
	case connectors.DeleteAccount:
		delete(l, a.App)
	}
	return putLedger(tx, a.Person.Worker, l)
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// OutboxItem is one action waiting to be carried out.
type OutboxItem struct {
	Seq        uint64            `json:"seq"`
	PlanID     string            `json:"planId"`
	StepID     string            `json:"stepId"`
	Action     connectors.Action `json:"action"`
	Actor      string            `json:"actor"`
	Grace      time.Duration     `json:"grace,omitempty"`
	Exception  bool              `json:"exception,omitempty"`
	EnqueuedAt time.Time         `json:"enqueuedAt"`
}

func outboxItems(tx *bolt.Tx) ([]OutboxItem, error) {
	ptrs, err := decodeAll[OutboxItem](tx, bucketOutbox)
	out := make([]OutboxItem, len(ptrs))
	for i, p := range ptrs {
		out[i] = *p
	}
	return out, err
}

// SavedPlan is a plan kept in the store: one waiting for approval, or one
// that was approved and applied.
type SavedPlan struct {
	Plan      *Plan     `json:"plan"`
	Status    string    `json:"status"` // pending, approved, rejected
	Exceeded  []string  `json:"exceeded,omitempty"`
	CreatedBy string    `json:"createdBy,omitempty"`
	DecidedBy string    `json:"decidedBy,omitempty"`
	DecidedAt time.Time `json:"decidedAt,omitzero"`
}

// Saved plan statuses.
const (
	PlanPending  = "pending"
	PlanApproved = "approved"
	PlanRejected = "rejected"
	// PlanSuperseded: a newer pending plan replaced it.
	PlanSuperseded = "superseded"
)

// pendingPlans returns the saved plans waiting for approval.
func pendingPlans(tx *bolt.Tx) ([]*SavedPlan, error) {
	all, err := decodeAll[SavedPlan](tx, bucketPlans)
	out := all[:0]
	for _, sp := range all {
		if sp.Status == PlanPending {
			out = append(out, sp)
		}
	}
	return out, err
}

func getMeta(tx *bolt.Tx, key string) string {
	return string(tx.Bucket(bucketMeta).Get([]byte(key)))
}

func putMeta(tx *bolt.Tx, key, value string) error {
	return tx.Bucket(bucketMeta).Put([]byte(key), []byte(value))
}
