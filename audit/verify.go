package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// VerifyResult describes a log that verified.
type VerifyResult struct {
	Records uint64 // number of records, which is also the newest seq
	Head    string // hex hash of the newest record; "" for an empty log
}

// ctxCheckEvery is how many records Verify checks between looks at ctx.
const ctxCheckEvery = 1 << 14

// Verify checks the whole chain in one read transaction: keys exactly
// 1..n, each record's prevHash equal to the stored hash of the record
// before (zero for the first), each stored hash equal to the recomputed
// SHA-256(key || prevHash || body), each body's seq equal to its key, and
// the bucket's sequence counter equal to n. It hashes bytes and does not
// decode JSON.
//
// A broken chain returns a *ChainError naming the first bad record (or
// the first missing one); Verify fails with ErrNoBucket or ctx's error
// otherwise. Compare VerifyResult.Head with an earlier Head published
// elsewhere to detect a log rewritten consistently from some point on.
func (l *Log) Verify(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		res, err = verifyTx(ctx, tx)
		return err
	})
	return res, err
}

func verifyTx(ctx context.Context, tx *bolt.Tx) (VerifyResult, error) {
	b := tx.Bucket([]byte(Bucket))
	if b == nil {
		return VerifyResult{}, fmt.Errorf("audit: verify: %w", ErrNoBucket)
	}
	var (
		prev   [hashLen]byte // stored hash of the previous record
		sum    [hashLen]byte
		prefix = make([]byte, 0, 32) // `{"seq":N,`
		h      = sha256.New()
		n      uint64 // records checked so far
	)
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		want := n + 1
		if n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return VerifyResult{}, fmt.Errorf("audit: verify: %w", err)
			}
		}
		if len(k) != 8 {
			return VerifyResult{}, &ChainError{Seq: want, Reason: fmt.Sprintf("malformed key %x where record %d belongs", k, want)}
		}
		switch seq := binary.BigEndian.Uint64(k); {
		case seq > want:
			return VerifyResult{}, &ChainError{Seq: want, Reason: fmt.Sprintf("gap: record %d missing", want)}
		case seq < want: // only key 0 can sort before 1
			return VerifyResult{}, &ChainError{Seq: seq, Reason: fmt.Sprintf("out of sequence: key %d where record %d belongs", seq, want)}
		}
		if len(v) < headerLen+2 {
			return VerifyResult{}, &ChainError{Seq: want, Reason: "value too short"}
		}
		if !bytes.Equal(v[:hashLen], prev[:]) {
			reason := fmt.Sprintf("prev hash does not match record %d", want-1)
			if want == 1 {
				reason = "prev hash of the first record is not zero"
			}
			return VerifyResult{}, &ChainError{Seq: want, Reason: reason}
		}
		h.Reset()
		h.Write(k)
		h.Write(v[:hashLen])
		h.Write(v[headerLen:])
		if !bytes.Equal(h.Sum(sum[:0]), v[hashLen:headerLen]) {
			return VerifyResult{}, &ChainError{Seq: want, Reason: "hash mismatch: record content changed"}
		}
		prefix = strconv.AppendUint(append(prefix[:0], `{"seq":`...), want, 10)
		prefix = append(prefix, ',')
		if !bytes.HasPrefix(v[headerLen:], prefix) {
			return VerifyResult{}, &ChainError{Seq: want, Reason: "body seq does not match key"}
		}
		copy(prev[:], v[hashLen:headerLen])
		n = want
	}
	switch s := b.Sequence(); {
	case s > n:
		return VerifyResult{}, &ChainError{Seq: n + 1, Reason: fmt.Sprintf("gap: record %d missing (log truncated; %d records were appended)", n+1, s)}
	case s < n:
		return VerifyResult{}, &ChainError{Seq: s + 1, Reason: fmt.Sprintf("record %d was not written by Append (bucket sequence is %d)", s+1, s)}
	}
	res := VerifyResult{Records: n}
	if n > 0 {
		res.Head = hex.EncodeToString(prev[:])
	}
	return res, nil
}
