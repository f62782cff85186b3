package audit

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrNoBucket means the audit bucket does not exist: Init has not run
	// on this database.
	ErrNoBucket = errors.New("audit: bucket missing (Init not run)")

	// ErrInvalidRecord means Append was given a record it will not store:
	// nil, without Type or Actor, or with a Time outside years 1–9999.
	ErrInvalidRecord = errors.New("audit: invalid record")

	// ErrInvalidFilter means a Filter cannot be used (a negative Limit).
	ErrInvalidFilter = errors.New("audit: invalid filter")

	// ErrFormat means Export was asked for a format it does not write.
	ErrFormat = errors.New("audit: unknown export format")

	// ErrCorrupt means a stored record cannot be read back (a value that is
	// too short or a body that is not valid JSON), or the log's keys are in
	// a state Append cannot continue from. Run Verify for the full picture.
	ErrCorrupt = errors.New("audit: corrupt record")

	// ErrTampered matches every *ChainError with errors.Is.
	ErrTampered = errors.New("audit: hash chain broken")
)

// ChainError is what Verify returns when the chain is broken. Seq names the
// first bad record: the one whose content, link or position is wrong, or
// the first one missing.
type ChainError struct {
	Seq    uint64
	Reason string // e.g. "hash mismatch: record content changed"
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: chain broken at record %d: %s", e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrTampered) true for every *ChainError.
func (e *ChainError) Is(target error) bool { return target == ErrTampered }
