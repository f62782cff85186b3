// Package memory is an in-process app for demos and tests: a fake SaaS
// app whose accounts and entitlements live in Roster's own bbolt file
// (connectors.Env.DB), so its state survives between CLI runs.
//
// Each named instance declares the entitlement kinds it offers in its
// settings (see Config) and can be told to be slow (latency), flaky
// (failure_rate: fail before changing anything) or to lose responses
// (lost_response_rate: change, then report a Transient error), which is
// how the executor's retries and the connectors' idempotence are tested.
//
// Storage: bucket "memory" holds one nested bucket per instance name; in it
// each account is a JSON record keyed by its id ("m-000001", from the
// bucket's sequence); the nested bucket "changes" is an append-only log
// of every effective change (see Change), keyed by a big-endian sequence
// number; the nested buckets "by_worker" (worker id → account id) and
// "by_email" (lower-cased e-mail, 0x00, account id → nothing) index the
// accounts so an Apply does not scan them. An Apply that changes nothing writes nothing. Every Apply is one
// bbolt read-check-write transaction, so concurrent applies are safe, and a
// Snapshot is one read transaction.
//
// How it fails: Open rejects a nil DB and bad settings with an error naming
// the field. Apply returns a *connectors.Error: Invalid for an action the
// instance cannot take (unknown action or entitlement kind, undeclared
// role, nothing to identify the person by), NotFound when the action needs
// an account that does not exist, Transient for injected failures. A
// cancelled context is returned wrapped, unclassified. Storage errors are
// wrapped with the action and unclassified (so retried).
package memory

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rosterhq/roster/connectors"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketMemory   = []byte("memory")
	bucketChanges  = []byte("changes")
	bucketByWorker = []byte("by_worker")
	bucketByEmail  = []byte("by_email")
)

// App is one memory instance.
type App struct {
	name  string
	cfg   Config
	kinds map[string]connectors.KindSpec
	db    *bolt.DB
	// update writes to db: db.Update, or the host's group commit.
	update func(fn func(tx *bolt.Tx) error) error
	now    func() time.Time
	rng    *lockedRand
}

var _ connectors.Connector = (*App)(nil)

// Change is one effective change, as logged in the instance's "changes"
// bucket.
type Change struct {
	Seq         uint64                 `json:"seq"`
	Time        time.Time              `json:"time"`
	Kind        connectors.ActionKind  `json:"kind"`
	Account     connectors.AccountID   `json:"account"`
	Worker      connectors.WorkerID    `json:"worker,omitempty"`
	Entitlement connectors.Entitlement `json:"entitlement,omitzero"`
}

// record is one stored account.
type record struct {
	ID           connectors.AccountID     `json:"id"`
	Worker       connectors.WorkerID      `json:"worker,omitempty"`
	Email        string                   `json:"email,omitempty"`
	UserName     string                   `json:"userName,omitempty"`
	DisplayName  string                   `json:"displayName,omitempty"`
	Role         string                   `json:"role,omitempty"`
	Suspended    bool                     `json:"suspended,omitempty"`
	Entitlements []connectors.Entitlement `json:"entitlements,omitempty"`
	Created      time.Time                `json:"created"`
}

// Open is the connectors.Opener of type "memory". It decodes and validates
// env.Settings and needs env.DB; it does no I/O.
func Open(_ context.Context, env connectors.Env) (connectors.Connector, error) {
	var cfg Config
	if env.Settings != nil {
		if err := env.Settings.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	a, err := New(env.Name, cfg, env.DB, env.Now)
	if err != nil {
		return nil, err
	}
	if env.Update != nil {
		a.ShareCommits(env.Update)
	}
	return a, nil
}

// ShareCommits makes the app write through update (a group commit shared
// with the engine, see connectors.Env.Update) instead of DB.Update.
func (a *App) ShareCommits(update func(fn func(tx *bolt.Tx) error) error) { a.update = update }

// New builds an instance from an already decoded Config; now may be nil
// (time.Now). It validates cfg and does no I/O.
func New(name string, cfg Config, db *bolt.DB, now func() time.Time) (*App, error) {
	if name == "" {
		return nil, errors.New("memory: empty instance name")
	}
	if db == nil {
		return nil, errors.New("memory: no data file (Env.DB is nil); the memory app keeps its state in Roster's bbolt file")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	a := &App{name: name, db: db, update: db.Update, now: now, kinds: map[string]connectors.KindSpec{}}
	a.cfg = cfg
	a.cfg.Kinds = cloneKinds(cfg.Kinds)
	for _, k := range a.cfg.Kinds {
		a.kinds[k.Name] = k
	}
	seed1, seed2 := uint64(cfg.Seed), uint64(0x9e3779b97f4a7c15)
	if cfg.Seed == 0 {
		seed1, seed2 = rand.Uint64(), rand.Uint64()
	}
	a.rng = &lockedRand{r: rand.New(rand.NewPCG(seed1, seed2))}
	return a, nil
}

func cloneKinds(ks []connectors.KindSpec) []connectors.KindSpec {
	out := make([]connectors.KindSpec, len(ks))
	for i, k := range ks {
		k.Roles = slices.Clone(k.Roles)
		out[i] = k
	}
	return out
}

// Name returns the instance name.
func (a *App) Name() string { return a.name }

// Kinds returns the kinds declared in the settings, in their order.
func (a *App) Kinds() []connectors.KindSpec { return cloneKinds(a.cfg.Kinds) }

// Snapshot returns every account of the instance, ordered by ID, with its
// entitlements in connectors.SortEntitlements order.
func (a *App) Snapshot(ctx context.Context) (*connectors.State, error) {
	op := fmt.Sprintf("memory %s: snapshot", a.name)
	if err := a.wait(ctx, op); err != nil {
		return nil, err
	}
	if a.rng.chance(a.cfg.FailureRate) {
		return nil, connectors.Errorf(connectors.Transient, op, "injected failure (failure_rate %v)", a.cfg.FailureRate)
	}
	st := &connectors.State{App: a.name, Accounts: []connectors.AccountState{}}
	err := a.db.View(func(tx *bolt.Tx) error {
		b := a.bucket(tx)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil { // a nested bucket (changes, indexes)
				return nil
			}
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("account %q: %w", k, err)
			}
			es := slices.Clone(r.Entitlements)
			connectors.SortEntitlements(es)
			st.Accounts = append(st.Accounts, connectors.AccountState{
				ID:           r.ID,
				Worker:       r.Worker,
				Email:        r.Email,
				UserName:     r.UserName,
				Suspended:    r.Suspended,
				Role:         r.Role,
				Entitlements: es,
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	sort.Slice(st.Accounts, func(i, j int) bool { return st.Accounts[i].ID < st.Accounts[j].ID })
	return st, nil
}

// Apply carries out one action in one bbolt transaction. Repeating an
// action that is already in effect is a no-op that logs no change.
func (a *App) Apply(ctx context.Context, act connectors.Action) error {
	act.App = a.name
	op := "memory " + act.String()
	if err := a.check(act, op); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	// The call takes Latency in all, its own write included, as a remote
	// API's call would: the write happens first, the rest of the latency
	// is waited after.
	start := time.Now()
	if a.rng.chance(a.cfg.FailureRate) {
		if err := a.waitRest(ctx, op, start); err != nil {
			return err
		}
		return connectors.Errorf(connectors.Transient, op, "injected failure before the change (failure_rate %v)", a.cfg.FailureRate)
	}
	err := a.update(func(tx *bolt.Tx) error { return a.applyTx(tx, act, op) })
	if werr := a.waitRest(ctx, op, start); werr != nil && err == nil {
		// Done, but the answer is lost to the caller's end: like a
		// timeout after the change, retried safely.
		return werr
	}
	if err != nil {
		var ce *connectors.Error
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if a.rng.chance(a.cfg.LostResponseRate) {
		return connectors.Errorf(connectors.Transient, op, "injected lost response after the change (lost_response_rate %v)", a.cfg.LostResponseRate)
	}
	return nil
}

// Changes returns the instance's change log, oldest first.
func (a *App) Changes(ctx context.Context) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory %s: changes: %w", a.name, err)
	}
	var out []Change
	err := a.db.View(func(tx *bolt.Tx) error {
		b := a.bucket(tx)
		if b == nil {
			return nil
		}
		cb := b.Bucket(bucketChanges)
		if cb == nil {
			return nil
		}
		return cb.ForEach(func(k, v []byte) error {
			var c Change
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("change %x: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("memory %s: changes: %w", a.name, err)
	}
	return out, nil
}

// check rejects, before any I/O, an action this instance cannot take.
func (a *App) check(act connectors.Action, op string) error {
	invalid := func(format string, args ...any) error {
		return connectors.Errorf(connectors.Invalid, op, format, args...)
	}
	if act.Account == "" && act.Person.Worker == "" && act.Person.Email == "" {
		return invalid("no account id, worker id or e-mail to find the account by")
	}
	e := act.Entitlement
	switch act.Kind {
	case connectors.CreateAccount:
		if e.Kind != "" && !e.IsAccount() {
			return invalid("create_account carries entitlement %q; only an account role may come with it", e)
		}
		return a.checkAccountRole(e.Role, invalid)
	case connectors.Grant, connectors.Revoke:
		if e.IsAccount() {
			if act.Kind == connectors.Revoke {
				return invalid("cannot revoke the account itself; use delete_account")
			}
			if e.Resource != "" {
				return invalid("the account takes no resource (%q)", e)
			}
			return a.checkAccountRole(e.Role, invalid)
		}
		spec, ok := a.kinds[e.Kind]
		if !ok {
			return invalid("kind %q is not offered by this instance (offered: %s)", e.Kind, a.kindNames())
		}
		if e.Resource == "" {
			return invalid("entitlement %q names no resource", e)
		}
		if act.Kind == connectors.Grant && e.Role != "" && spec.RoleRank(e.Role) < 0 {
			if len(spec.Roles) == 0 {
				return invalid("kind %q takes no role, got %q", e.Kind, e.Role)
			}
			return invalid("kind %q has no role %q (roles: %s)", e.Kind, e.Role, strings.Join(spec.Roles, ", "))
		}
		return nil
	case connectors.SuspendAccount, connectors.RestoreAccount, connectors.DeleteAccount:
		return nil
	case connectors.TransferData:
		return invalid("the memory app does not transfer data")
	}
	return invalid("unknown action kind %q", act.Kind)
}

func (a *App) checkAccountRole(role string, invalid func(string, ...any) error) error {
	if role == "" {
		return nil
	}
	spec := a.kinds[connectors.KindAccount]
	if spec.RoleRank(role) < 0 {
		if len(spec.Roles) == 0 {
			return invalid("accounts take no role in this instance, got %q", role)
		}
		return invalid("no account role %q (roles: %s)", role, strings.Join(spec.Roles, ", "))
	}
	return nil
}

func (a *App) kindNames() string {
	names := make([]string, 0, len(a.cfg.Kinds))
	for _, k := range a.cfg.Kinds {
		if k.Name != connectors.KindAccount {
			names = append(names, k.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// applyTx carries out a checked action inside tx.
func (a *App) applyTx(tx *bolt.Tx, act connectors.Action, op string) error {
	top, err := tx.CreateBucketIfNotExists(bucketMemory)
	if err != nil {
		return fmt.Errorf("bucket %q: %w", bucketMemory, err)
	}
	b, err := top.CreateBucketIfNotExists([]byte(a.name))
	if err != nil {
		return fmt.Errorf("bucket %q: %w", a.name, err)
	}
	idx, err := openIndex(b)
	if err != nil {
		return err
	}
	r, err := idx.find(act)
	if err != nil {
		return err
	}
	notFound := func() error {
		return connectors.Errorf(connectors.NotFound, op, "no account for worker %q (e-mail %q, account %q)",
			act.Person.Worker, act.Person.Email, act.Account)
	}
	e := act.Entitlement
	var logged connectors.Entitlement // what the change record names

	switch act.Kind {
	case connectors.CreateAccount:
		if r != nil {
			return nil
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next account id: %w", err)
		}
		role := e.Role
		if role == "" {
			role = a.kinds[connectors.KindAccount].DefaultRole()
		}
		p := act.Person
		r = &record{
			ID:          connectors.AccountID(fmt.Sprintf("m-%06d", seq)),
			Worker:      p.Worker,
			Email:       p.Email,
			UserName:    p.UserName,
			DisplayName: p.DisplayName,
			Role:        role,
			Created:     a.now().UTC(),
		}
		if err := idx.add(r); err != nil {
			return err
		}
		logged = connectors.Entitlement{Kind: connectors.KindAccount, Role: role}

	case connectors.Grant:
		if r == nil {
			return notFound()
		}
		if e.Role == "" {
			e.Role = a.kinds[e.Kind].DefaultRole()
		}
		if e.IsAccount() {
			if r.Role == e.Role {
				return nil
			}
			r.Role = e.Role
		} else {
			i := slices.IndexFunc(r.Entitlements, func(h connectors.Entitlement) bool { return h.Key() == e.Key() })
			switch {
			case i < 0:
				r.Entitlements = append(r.Entitlements, e)
				connectors.SortEntitlements(r.Entitlements)
			case r.Entitlements[i] == e:
				return nil
			default: // a role change
				r.Entitlements[i] = e
				connectors.SortEntitlements(r.Entitlements)
			}
		}
		logged = e

	case connectors.Revoke:
		if r == nil {
			return nil
		}
		i := slices.IndexFunc(r.Entitlements, func(h connectors.Entitlement) bool { return h.Key() == e.Key() })
		if i < 0 {
			return nil
		}
		logged = r.Entitlements[i]
		r.Entitlements = slices.Delete(r.Entitlements, i, i+1)

	case connectors.SuspendAccount:
		if r == nil {
			return notFound()
		}
		drop := a.cfg.SuspendDropsGrants && len(r.Entitlements) > 0
		if r.Suspended && !drop {
			return nil
		}
		r.Suspended = true
		if drop {
			r.Entitlements = nil
		}

	case connectors.RestoreAccount:
		if r == nil {
			return notFound()
		}
		if !r.Suspended {
			return nil
		}
		r.Suspended = false

	case connectors.DeleteAccount:
		if r == nil {
			return nil
		}
		if err := b.Delete([]byte(r.ID)); err != nil {
			return fmt.Errorf("delete account %s: %w", r.ID, err)
		}
		if err := idx.remove(r); err != nil {
			return err
		}
		return a.logChange(b, act.Kind, r, logged)

	default:
		return connectors.Errorf(connectors.Invalid, op, "unknown action kind %q", act.Kind)
	}

	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode account %s: %w", r.ID, err)
	}
	if err := b.Put([]byte(r.ID), v); err != nil {
		return fmt.Errorf("store account %s: %w", r.ID, err)
	}
	return a.logChange(b, act.Kind, r, logged)
}

// index holds an instance's accounts and their look-up indexes, inside
// one write transaction.
type index struct {
	accounts, byWorker, byEmail *bolt.Bucket
}

func openIndex(b *bolt.Bucket) (*index, error) {
	w, err := b.CreateBucketIfNotExists(bucketByWorker)
	if err != nil {
		return nil, fmt.Errorf("bucket %q: %w", bucketByWorker, err)
	}
	e, err := b.CreateBucketIfNotExists(bucketByEmail)
	if err != nil {
		return nil, fmt.Errorf("bucket %q: %w", bucketByEmail, err)
	}
	return &index{accounts: b, byWorker: w, byEmail: e}, nil
}

func emailKey(email string, id connectors.AccountID) []byte {
	return append(emailPrefix(email), id...)
}

func emailPrefix(email string) []byte {
	return append([]byte(strings.ToLower(email)), 0)
}

// get returns the account with id, or nil.
func (x *index) get(id []byte) (*record, error) {
	v := x.accounts.Get(id)
	if v == nil {
		return nil, nil
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode account %q: %w", id, err)
	}
	return &r, nil
}

// find looks the account up: by act.Account when it is set and present,
// else by worker id, else by e-mail (case-insensitive) among accounts that
// carry no other worker id. It returns nil when there is none.
func (x *index) find(act connectors.Action) (*record, error) {
	if act.Account != "" {
		if r, err := x.get([]byte(act.Account)); r != nil || err != nil {
			return r, err
		}
	}
	p := act.Person
	if p.Worker != "" {
		if id := x.byWorker.Get([]byte(p.Worker)); id != nil {
			if r, err := x.get(id); r != nil || err != nil {
				return r, err
			}
		}
	}
	if p.Email == "" {
		return nil, nil
	}
	prefix := emailPrefix(p.Email)
	c := x.byEmail.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		r, err := x.get(k[len(prefix):])
		if err != nil {
			return nil, err
		}
		if r != nil && (r.Worker == "" || p.Worker == "") {
			return r, nil
		}
	}
	return nil, nil
}

// add indexes a new account.
func (x *index) add(r *record) error {
	if r.Worker != "" {
		if err := x.byWorker.Put([]byte(r.Worker), []byte(r.ID)); err != nil {
			return fmt.Errorf("index worker %s: %w", r.Worker, err)
		}
	}
	if r.Email != "" {
		if err := x.byEmail.Put(emailKey(r.Email, r.ID), nil); err != nil {
			return fmt.Errorf("index e-mail of %s: %w", r.ID, err)
		}
	}
	return nil
}

// remove drops a deleted account from the indexes.
func (x *index) remove(r *record) error {
	if r.Worker != "" && bytes.Equal(x.byWorker.Get([]byte(r.Worker)), []byte(r.ID)) {
		if err := x.byWorker.Delete([]byte(r.Worker)); err != nil {
			return fmt.Errorf("unindex worker %s: %w", r.Worker, err)
		}
	}
	if r.Email != "" {
		if err := x.byEmail.Delete(emailKey(r.Email, r.ID)); err != nil {
			return fmt.Errorf("unindex e-mail of %s: %w", r.ID, err)
		}
	}
	return nil
}

// logChange appends one record to the change log.
func (a *App) logChange(b *bolt.Bucket, kind connectors.ActionKind, r *record, e connectors.Entitlement) error {
	cb, err := b.CreateBucketIfNotExists(bucketChanges)
	if err != nil {
		return fmt.Errorf("bucket %q: %w", bucketChanges, err)
	}
	seq, err := cb.NextSequence()
	if err != nil {
		return fmt.Errorf("next change sequence: %w", err)
	}
	v, err := json.Marshal(Change{Seq: seq, Time: a.now().UTC(), Kind: kind, Account: r.ID, Worker: r.Worker, Entitlement: e})
	if err != nil {
		return fmt.Errorf("encode change: %w", err)
	}
	k := binary.BigEndian.AppendUint64(nil, seq)
	if err := cb.Put(k, v); err != nil {
		return fmt.Errorf("store change %d: %w", seq, err)
	}
	return nil
}

// bucket returns the instance's bucket, or nil before its first write.
func (a *App) bucket(tx *bolt.Tx) *bolt.Bucket {
	top := tx.Bucket(bucketMemory)
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(a.name))
}

// wait sleeps for the configured latency, or until ctx ends.
// waitRest waits what is left of the latency of a call started at start.
func (a *App) waitRest(ctx context.Context, op string, start time.Time) error {
	return a.sleep(ctx, op, time.Duration(a.cfg.Latency)-time.Since(start))
}

func (a *App) wait(ctx context.Context, op string) error {
	return a.sleep(ctx, op, time.Duration(a.cfg.Latency))
}

func (a *App) sleep(ctx context.Context, op string, d time.Duration) error {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// lockedRand is a random source safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

// chance reports true with probability p. It draws only when 0 < p < 1,
// so a seeded run's sequence depends only on the calls that can fail.
func (l *lockedRand) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64() < p
}
