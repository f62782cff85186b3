package connectors

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Connector is one configured app instance.
type Connector interface {
	// Name is the instance name from roster.yaml, e.g. "github".
	Name() string
	// Kinds lists the entitlement kinds this instance offers, besides the
	// account (which every connector offers; a KindSpec named "account"
	// may be listed to declare account-level roles). Policy validation
	// checks every grant against it. It does no I/O.
	Kinds() []KindSpec
	// Snapshot reads the app's real state: its accounts and the
	// entitlements Roster manages on them. Errors are wrapped *Error values
	// where the kind is known (Transient, RateLimited, Permission…).
	Snapshot(ctx context.Context) (*State, error)
	// Apply carries out one action idempotently. "Already granted",
	// "already removed", "already suspended" are success. It returns an
	// *Error whose Kind tells the executor whether to retry: Transient and
	// RateLimited are retried, every other kind is terminal.
	Apply(ctx context.Context, a Action) error
}

// DataTransferer is an optional capability: moving a leaver's data (files,
// calendars) to another person, usually the manager. Found by type
// assertion.
type DataTransferer interface {
	TransferData(ctx context.Context, from Person, to string) error
}

// MFAReporter is an optional capability: which accounts have no second
// factor enrolled.
type MFAReporter interface {
	AccountsWithoutMFA(ctx context.Context) ([]AccountID, error)
}

// Checker is an optional capability: read-only calls that prove the
// credentials work and list missing permissions.
type Checker interface {
	Check(ctx context.Context) (missing []string, err error)
}

// ResourceChecker is an optional capability: which of the resources the
// policies grant do not exist in the app (a team slug nobody created, a
// misspelt channel). `roster connectors check` asks it, with every
// resource the policy grants to any worker, so a typo is found before an
// apply fails on it.
type ResourceChecker interface {
	// UnknownResources returns the keys among keys that name nothing in
	// the app, sorted. Keys of kinds it cannot check are not returned.
	UnknownResources(ctx context.Context, keys []EntitlementKey) ([]EntitlementKey, error)
}

// Settings decodes a connector instance's own settings block from
// roster.yaml into v strictly: an unknown key or a wrong type is an error
// that names the file, line and column.
type Settings interface {
	Decode(v any) error
}

// Env is everything an Opener gets to build one instance.
type Env struct {
	// Name is the instance name ("github", "slack-eu").
	Name string
	// Settings is the instance's settings block.
	Settings Settings
	// Secret resolves a secret reference ("env:NAME" or "file:PATH") to
	// its value. The value must never be logged or stored.
	Secret func(ref string) (string, error)
	// Logger is scoped to the instance (connector=NAME).
	Logger *slog.Logger
	// DB is Roster's data file, for connectors that keep their state in it
	// (the in-process memory app). Others ignore it.
	DB *bolt.DB
	// Update, when set, writes to DB in a transaction shared with the
	// engine's other writes (group commit: one fsync for many writers).
	// fn must write nothing when it returns an error. Nil: use DB.Update.
	Update func(fn func(tx *bolt.Tx) error) error
	// Now is the clock.
	Now func() time.Time
	// OnWait, when set, is told about every wait a connector makes before
	// retrying a call: the status that caused it (429, a 5xx, or 0 for a
	// network error) and how long. `roster serve` turns it into metrics.
	OnWait func(status int, wait time.Duration)
}

// Opener builds one connector instance. It validates settings and
// resolves secrets but does no network I/O, so `roster policy check` and
// `roster config check` can open every instance offline.
type Opener func(ctx context.Context, env Env) (Connector, error)

// Registry maps a connector type name ("memory", "github") to its Opener.
// cmd/roster builds it explicitly; nothing registers itself.
type Registry map[string]Opener

// Open builds an instance of type typ.
func (r Registry) Open(ctx context.Context, typ string, env Env) (Connector, error) {
	open, ok := r[typ]
	if !ok {
		return nil, fmt.Errorf("connector %q: unknown type %q (known: %v)", env.Name, typ, r.Types())
	}
	c, err := open(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("connector %q (%s): %w", env.Name, typ, err)
	}
	return c, nil
}

// Types lists the registered type names, sorted.
func (r Registry) Types() []string {
	out := make([]string, 0, len(r))
	for t := range r {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
