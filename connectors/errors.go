package connectors

import (
	"errors"
	"fmt"
	"time"
)

// ErrorKind classifies a connector failure so the executor can decide
// between retrying and giving up.
type ErrorKind int

// The error kinds. Transient and RateLimited are retried with backoff;
// every other kind is terminal: retrying cannot make it succeed.
const (
	Unknown     ErrorKind = iota // unclassified: treated as transient
	NotFound                     // the account, team or group does not exist
	Invalid                      // the request or configuration is wrong
	Conflict                     // the app refuses because of its current state
	Permission                   // credentials lack a permission
	Transient                    // timeouts, 5xx, connection resets
	RateLimited                  // 429 and the like; RetryAfter says how long
)

func (k ErrorKind) String() string {
	switch k {
	case NotFound:
		return "not_found"
	case Invalid:
		return "invalid"
	case Conflict:
		return "conflict"
	case Permission:
		return "permission"
	case Transient:
		return "transient"
	case RateLimited:
		return "rate_limited"
	}
	return "unknown"
}

// Error is a classified connector failure.
type Error struct {
	Kind ErrorKind
	// Op says what was being done ("add alice to team backend").
	Op  string
	Err error
	// RetryAfter is how long the app asked us to wait (RateLimited).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Op, e.Kind)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of kind k.
func Errorf(k ErrorKind, op string, format string, args ...any) *Error {
	return &Error{Kind: k, Op: op, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, or Unknown.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Unknown
}

// Retryable reports whether err is worth retrying: Transient, RateLimited
// and unclassified errors are; every classified other kind is terminal.
func Retryable(err error) bool {
	switch KindOf(err) {
	case Transient, RateLimited, Unknown:
		return true
	}
	return false
}

// RetryAfter returns how long the app asked to wait before retrying, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
