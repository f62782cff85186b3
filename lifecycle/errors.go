package lifecycle

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned for an unknown worker or plan id.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness rule:
// another live worker already has the userName (compared
// case-insensitively) or the externalId.
var ErrConflict = errors.New("conflict")

// ErrInvalidRecord wraps problems with an HR record (bad date, no id…).
var ErrInvalidRecord = errors.New("invalid HR record")

// ApprovalRequiredError is returned by Apply when the plan exceeds a
// safety threshold: the plan was saved as pending with PlanID and nothing
// was changed.
type ApprovalRequiredError struct {
	PlanID   string
	Exceeded []string // human sentences: "revoke: 12 workers > max 10"
}

func (e *ApprovalRequiredError) Error() string {
	return fmt.Sprintf("plan %s exceeds the safety thresholds (%v); it was saved and waits for `roster approve %s`", e.PlanID, e.Exceeded, e.PlanID)
}

// ErrApprovalRequired matches *ApprovalRequiredError with errors.Is.
var ErrApprovalRequired = errors.New("approval required")

// Is makes errors.Is(err, ErrApprovalRequired) true.
func (e *ApprovalRequiredError) Is(target error) bool { return target == ErrApprovalRequired }
