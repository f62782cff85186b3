package audit

import (
	"encoding/json"
	"fmt"
	"time"
)

// TimeFormat is the one format record times are stored and exported in:
// UTC, nanoseconds, always the same width. It never changes.
const TimeFormat = "2006-01-02T15:04:05.000000000Z"

// Record is one audit event. Only Type and Actor are required; Append
// assigns Seq and, when it is zero, Time.
//
// Records must never hold secrets: no tokens, passwords or raw request
// bodies, in any field including Details.
type Record struct {
	// Seq is the record's position in the log, 1, 2, 3…; set by Append.
	Seq uint64 `json:"seq"`
	// Time is when the event happened, stored in UTC in TimeFormat.
	Time time.Time `json:"time"`
	// Type is the event, e.g. "hr.upsert", "worker.transition",
	// "plan.approved", "action.intent", "action.outcome", "config.load".
	Type string `json:"type"`
	// Actor is who caused it: "hr-import", "cli:alice", a SCIM token's
	// name (never the token), "scheduler".
	Actor string `json:"actor"`
	// Worker is the identity concerned, if any.
	Worker string `json:"worker,omitempty"`
	// App is the connector instance concerned, if any.
	App string `json:"app,omitempty"`
	// Action is the action kind: grant, revoke, create_account…
	Action string `json:"action,omitempty"`
	// Entitlement is the entitlement concerned, if any.
	Entitlement string `json:"entitlement,omitempty"`
	// Reason is why: joiner, mover, leaver, rehire, policy_change,
	// exception_expired, drift.
	Reason string `json:"reason,omitempty"`
	// Outcome is how it ended: ok, failed, skipped…
	Outcome string `json:"outcome,omitempty"`
	// PlanID and ActionID tie the record to a plan and one of its actions.
	PlanID   string `json:"planId,omitempty"`
	ActionID string `json:"actionId,omitempty"`
	// Message is a human sentence, e.g. an error text (without secrets).
	Message string `json:"message,omitempty"`
	// Details holds free-form extra facts. Keys are sorted when encoded.
	Details map[string]string `json:"details,omitempty"`
}

// wireRecord is Record as stored: the same fields in the same order, with
// the time as a fixed-format string.
type wireRecord struct {
	Seq         uint64            `json:"seq"`
	Time        string            `json:"time"`
	Type        string            `json:"type"`
	Actor       string            `json:"actor"`
	Worker      string            `json:"worker,omitempty"`
	App         string            `json:"app,omitempty"`
	Action      string            `json:"action,omitempty"`
	Entitlement string            `json:"entitlement,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Outcome     string            `json:"outcome,omitempty"`
	PlanID      string            `json:"planId,omitempty"`
	ActionID    string            `json:"actionId,omitempty"`
	Message     string            `json:"message,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
}

// MarshalJSON encodes r in its canonical form: fields in declaration
// order, empty optional fields left out, Details keys sorted, and Time in
// UTC as TimeFormat. This is the form hashed into the chain, so it must
// never change.
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireRecord{
		Seq:         r.Seq,
		Time:        r.Time.UTC().Format(TimeFormat),
		Type:        r.Type,
		Actor:       r.Actor,
		Worker:      r.Worker,
		App:         r.App,
		Action:      r.Action,
		Entitlement: r.Entitlement,
		Reason:      r.Reason,
		Outcome:     r.Outcome,
		PlanID:      r.PlanID,
		ActionID:    r.ActionID,
		Message:     r.Message,
		Details:     r.Details,
	})
}

// UnmarshalJSON decodes the canonical form. It fails when the time is not
// in TimeFormat.
func (r *Record) UnmarshalJSON(b []byte) error {
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t, err := time.Parse(TimeFormat, w.Time)
	if err != nil {
		return fmt.Errorf("audit: record %d: time %q: %w", w.Seq, w.Time, err)
	}
	*r = Record{
		Seq:         w.Seq,
		Time:        t,
		Type:        w.Type,
		Actor:       w.Actor,
		Worker:      w.Worker,
		App:         w.App,
		Action:      w.Action,
		Entitlement: w.Entitlement,
		Reason:      w.Reason,
		Outcome:     w.Outcome,
		PlanID:      w.PlanID,
		ActionID:    w.ActionID,
		Message:     w.Message,
		Details:     w.Details,
	}
	return nil
}

// validate reports why r cannot be stored, if it cannot.
func (r *Record) validate() error {
	switch {
	case r.Type == "":
		return fmt.Errorf("%w: type is empty", ErrInvalidRecord)
	case r.Actor == "":
		return fmt.Errorf("%w: actor is empty", ErrInvalidRecord)
	case r.Time.Year() < 1 || r.Time.Year() > 9999:
		return fmt.Errorf("%w: time %s outside years 1-9999", ErrInvalidRecord, r.Time)
	}
	return nil
}
