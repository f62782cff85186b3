package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket is the name of the audit log's bucket in Roster's bbolt file.
const Bucket = "audit"

const (
	hashLen   = sha256.Size // 32
	headerLen = 2 * hashLen // prevHash || hash
)

// Init creates the audit bucket if it is missing. It needs a write
// transaction and has the shape db.Update expects: db.Update(audit.Init).
func Init(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists([]byte(Bucket)); err != nil {
		return fmt.Errorf("audit: create bucket: %w", err)
	}
	return nil
}

// Append adds r to the end of the log inside the write transaction tx and
// returns its seq. It sets r.Seq, sets r.Time from now (time.Now if nil)
// when it is zero, and converts r.Time to UTC; any Seq the caller set is
// overwritten. The record is durable only when tx commits, and disappears
// with it if tx rolls back, which is the point: callers audit inside the
// transaction that makes the change.
//
// Append fails with ErrInvalidRecord (nothing is written), ErrNoBucket,
// bbolt's errors.ErrTxNotWritable for a read-only tx, or ErrCorrupt when the newest
// stored record is unreadable or not below the next sequence number. It
// never modifies or deletes an existing record.
func Append(tx *bolt.Tx, r *Record, now func() time.Time) (uint64, error) {
	if r == nil {
		return 0, fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	if !tx.Writable() {
		return 0, fmt.Errorf("audit: append: %w", berrors.ErrTxNotWritable)
	}
	b := tx.Bucket([]byte(Bucket))
	if b == nil {
		return 0, fmt.Errorf("audit: append: %w", ErrNoBucket)
	}
	if r.Time.IsZero() {
		if now == nil {
			now = time.Now
		}
		r.Time = now()
	}
	r.Time = r.Time.UTC()
	if err := r.validate(); err != nil {
		return 0, err
	}

	// Keys only grow, so the newest record is the last one.
	prev := make([]byte, hashLen) // zero for the first record
	lastKey, lastVal := b.Cursor().Last()
	if lastKey != nil {
		if len(lastKey) != 8 || len(lastVal) < headerLen {
			return 0, fmt.Errorf("%w: newest record (key %x) is malformed", ErrCorrupt, lastKey)
		}
		copy(prev, lastVal[hashLen:headerLen])
	}

	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("audit: append: next sequence: %w", err)
	}
	if lastKey != nil && binary.BigEndian.Uint64(lastKey) >= seq {
		return 0, fmt.Errorf("%w: newest record %d is not below next sequence %d",
			ErrCorrupt, binary.BigEndian.Uint64(lastKey), seq)
	}
	r.Seq = seq
	body, err := r.MarshalJSON()
	if err != nil {
		r.Seq = 0
		return 0, fmt.Errorf("audit: append: encode record: %w", err)
	}

	var key [8]byte
	binary.BigEndian.PutUint64(key[:], seq)
	val := make([]byte, headerLen+len(body))
	copy(val, prev)
	copy(val[headerLen:], body)
	h := sha256.New()
	h.Write(key[:])
	h.Write(prev)
	h.Write(body)
	h.Sum(val[hashLen:hashLen]) // writes the hash into val[32:64]

	// Keys arrive in order, so full pages waste no space.
	b.FillPercent = 1.0
	if err := b.Put(key[:], val); err != nil {
		r.Seq = 0
		return 0, fmt.Errorf("audit: append record %d: %w", seq, err)
	}
	return seq, nil
}
