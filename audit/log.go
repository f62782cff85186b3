package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Log is the audit log of one bbolt database. It is safe for concurrent
// use; bbolt serialises its write transactions.
type Log struct {
	db *bolt.DB
	// now is the clock for records appended without a Time.
	now func() time.Time
}

// New returns the log stored in db. now is the clock used for records
// without a Time; nil means time.Now. Run Init on db before using the log.
func New(db *bolt.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// Append adds r in a transaction of its own and returns its seq. See the
// package-level Append for what it sets and how it fails; prefer that one
// when the event belongs to a change made in a transaction.
func (l *Log) Append(ctx context.Context, r *Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("audit: append: %w", err)
	}
	var seq uint64
	err := l.db.Update(func(tx *bolt.Tx) error {
		var err error
		seq, err = Append(tx, r, l.now)
		return err
	})
	return seq, err
}

// Head returns the newest record's seq and its hash in hex: the value to
// publish elsewhere to anchor the chain. An empty log gives 0 and "".
// It fails with ErrNoBucket or ErrCorrupt.
func (l *Log) Head(ctx context.Context) (seq uint64, hash string, err error) {
	if err := ctx.Err(); err != nil {
		return 0, "", fmt.Errorf("audit: head: %w", err)
	}
	err = l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(Bucket))
		if b == nil {
			return fmt.Errorf("audit: head: %w", ErrNoBucket)
		}
		k, v := b.Cursor().Last()
		if k == nil {
			return nil
		}
		if len(k) != 8 || len(v) < headerLen {
			return fmt.Errorf("%w: newest record (key %x) is malformed", ErrCorrupt, k)
		}
		seq = binary.BigEndian.Uint64(k)
		hash = hex.EncodeToString(v[hashLen:headerLen])
		return nil
	})
	return seq, hash, err
}

// Filter selects records for Query and Export. Zero fields select
// everything; set fields must all match.
type Filter struct {
	Worker string // exact match
	App    string // exact match
	// Type matches exactly, or as a prefix when it ends in "."
	// ("action." matches "action.intent" and "action.outcome").
	Type string
	// Since (inclusive) and Until (exclusive) bound the record's Time.
	Since, Until time.Time
	// AfterSeq skips records with seq <= AfterSeq: pass the last seq seen
	// to read on from there.
	AfterSeq uint64
	// Limit stops after this many matching records; 0 means no limit.
	Limit int
}

func (f *Filter) match(r *Record) bool {
	switch {
	case f.Worker != "" && r.Worker != f.Worker,
		f.App != "" && r.App != f.App,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	case f.Type == "":
		return true
	case strings.HasSuffix(f.Type, "."):
		return strings.HasPrefix(r.Type, f.Type)
	default:
		return r.Type == f.Type
	}
}

// entry is a decoded record together with its stored chain fields.
type entry struct {
	Record
	body           []byte // the stored canonical JSON
	prevHash, hash [hashLen]byte
}

// queryBatch is how many matching records are read per read transaction.
// The callback runs between transactions, so a slow consumer (an export to
// a network writer) never holds a read transaction open for long, which in
// bbolt would stall writers that need to grow the file.
const queryBatch = 256

// Query calls fn with each record that passes f, in seq order. fn runs
// outside any transaction, so it may itself append. Records appended while
// Query runs may or may not be seen. If fn returns an error, Query stops
// and returns that error unchanged. Query fails with ErrInvalidFilter,
// ErrNoBucket, ErrCorrupt (a body that does not decode) or ctx's error.
func (l *Log) Query(ctx context.Context, f Filter, fn func(Record) error) error {
	return l.scan(ctx, f, false, func(e *entry) error { return fn(e.Record) })
}

// scan is Query that also hands over the stored body and hashes (copied)
// when withRaw is set.
func (l *Log) scan(ctx context.Context, f Filter, withRaw bool, fn func(*entry) error) error {
	if f.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalidFilter, f.Limit)
	}
	next := f.AfterSeq + 1 // first key still to read
	if next == 0 {         // AfterSeq was MaxUint64
		return nil
	}
	sent := 0
	batch := make([]entry, 0, queryBatch)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("audit: query: %w", err)
		}
		batch = batch[:0]
		done := false
		err := l.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(Bucket))
			if b == nil {
				return fmt.Errorf("audit: query: %w", ErrNoBucket)
			}
			var start [8]byte
			binary.BigEndian.PutUint64(start[:], next)
			c := b.Cursor()
			k, v := c.Seek(start[:])
			for ; k != nil; k, v = c.Next() {
				if len(batch) == queryBatch || (f.Limit > 0 && sent+len(batch) == f.Limit) {
					return nil
				}
				if len(k) != 8 || len(v) < headerLen {
					return fmt.Errorf("%w: key %x: value too short", ErrCorrupt, k)
				}
				seq := binary.BigEndian.Uint64(k)
				next = seq + 1
				var e entry
				if err := e.Record.UnmarshalJSON(v[headerLen:]); err != nil {
					return fmt.Errorf("%w: record %d: %w", ErrCorrupt, seq, err)
				}
				e.Seq = seq // the key is authoritative; Verify checks they agree
				if !f.match(&e.Record) {
					continue
				}
				if withRaw {
					e.body = bytes.Clone(v[headerLen:])
					copy(e.prevHash[:], v[:hashLen])
					copy(e.hash[:], v[hashLen:headerLen])
				}
				batch = append(batch, e)
			}
			done = true
			return nil
		})
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		sent += len(batch)
		if done || (f.Limit > 0 && sent >= f.Limit) || next == 0 {
			return nil
		}
	}
}
