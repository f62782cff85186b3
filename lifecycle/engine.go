package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/policy"
)

// Threshold limits one kind of destructive action in a plan: the number
// of distinct workers affected may exceed neither Max nor MaxPercent of
// the managed workers. A negative Max or MaxPercent means no limit.
type Threshold struct {
	Max        int
	MaxPercent float64
}

// Safety holds the thresholds per action kind.
type Safety struct {
	Suspend, Revoke, Delete Threshold
}

// ExecutorOptions tune the executor.
type ExecutorOptions struct {
	// Concurrency is the default number of concurrent actions per
	// connector; PerApp overrides it for one instance.
	Concurrency int
	PerApp      map[string]int
	// MaxAttempts per action for transient errors (>= 1).
	MaxAttempts int
	BackoffBase time.Duration
	BackoffMax  time.Duration
}

// Options build an Engine.
type Options struct {
	DB       *bolt.DB
	Policy   *policy.Set
	Apps     []connectors.Connector
	Location *time.Location
	// Retention: delete a leaver's accounts this long after termination
	// (0 = never).
	Retention time.Duration
	Safety    Safety
	Executor  ExecutorOptions
	Now       func() time.Time
	Logger    *slog.Logger
	// Commits batches writes to DB; pass the one given to in-process
	// connectors (connectors.Env.Update) so all writers share commits.
	// Nil: the engine makes its own.
	Commits *GroupCommit
}

// Engine runs Roster's lifecycle on one data file. Its methods are safe
// for concurrent use.
type Engine struct {
	db        *bolt.DB
	audit     *audit.Log
	mu        sync.RWMutex // guards policy
	policy    *policy.Set
	apps      map[string]connectors.Connector
	appNames  []string
	loc       *time.Location
	retention time.Duration
	safety    Safety
	exec      ExecutorOptions
	now       func() time.Time
	log       *slog.Logger
	applyMu   sync.Mutex // one apply at a time
	commits   *GroupCommit
	disp      *dispatcher
	cache     stateCache   // apps' last known state, for the server's per-worker plans
	managed   atomic.Int64 // stored workers not terminated
	run       runState     // the server loop's state (Run, Notify)
}

// New builds an engine and initialises the data file's buckets.
func New(o Options) (*Engine, error) {
	if o.DB == nil {
		return nil, errors.New("lifecycle: no data file")
	}
	if o.Policy == nil {
		return nil, errors.New("lifecycle: no policy")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Executor.MaxAttempts < 1 {
		o.Executor.MaxAttempts = 1
	}
	if o.Executor.Concurrency < 1 {
		o.Executor.Concurrency = 4
	}
	if o.Executor.BackoffBase <= 0 {
		o.Executor.BackoffBase = 200 * time.Millisecond
	}
	if o.Executor.BackoffMax < o.Executor.BackoffBase {
		o.Executor.BackoffMax = o.Executor.BackoffBase
	}
	if err := InitStore(o.DB); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	e := &Engine{
		db: o.DB, audit: audit.New(o.DB, o.Now), policy: o.Policy, apps: map[string]connectors.Connector{},
		loc: o.Location, retention: o.Retention, safety: o.Safety, exec: o.Executor, now: o.Now, log: o.Logger,
	}
	for _, c := range o.Apps {
		if _, dup := e.apps[c.Name()]; dup {
			return nil, fmt.Errorf("lifecycle: two connectors named %q", c.Name())
		}
		e.apps[c.Name()] = c
		e.appNames = append(e.appNames, c.Name())
	}
	sort.Strings(e.appNames)
	e.disp = newDispatcher(e)
	e.commits = o.Commits
	if e.commits == nil {
		e.commits = NewGroupCommit(o.DB)
	}
	err := o.DB.View(func(tx *bolt.Tx) error {
		ws, err := allWorkers(tx)
		for _, w := range ws {
			if w.Status != Terminated {
				e.managed.Add(1)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: count workers: %w", err)
	}
	return e, nil
}

// Audit returns the engine's audit log.
func (e *Engine) Audit() *audit.Log { return e.audit }

// Policy returns the policy set in force.
func (e *Engine) Policy() *policy.Set {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.policy
}

// SetPolicy replaces the policy set in force (after it loaded cleanly).
func (e *Engine) SetPolicy(p *policy.Set) {
	e.mu.Lock()
	e.policy = p
	e.mu.Unlock()
}

// Apps returns the connector instance names, sorted.
func (e *Engine) Apps() []string { return append([]string(nil), e.appNames...) }

// App returns one connector by instance name.
func (e *Engine) App(name string) (connectors.Connector, bool) {
	c, ok := e.apps[name]
	return c, ok
}

// UpsertHR stores an HR record, computes the transition it causes and
// audits both in one transaction. It returns the stored worker and the
// transition ("" for none).
func (e *Engine) UpsertHR(ctx context.Context, actor string, rec HRRecord) (*Worker, string, error) {
	return e.writeHR(ctx, actor, rec.ID, &rec, false)
}

// DeleteHR marks a worker deleted in HR: they become a leaver and stay in
// the store for history.
func (e *Engine) DeleteHR(ctx context.Context, actor string, id connectors.WorkerID) (*Worker, string, error) {
	return e.writeHR(ctx, actor, id, nil, true)
}

func (e *Engine) writeHR(ctx context.Context, actor string, id connectors.WorkerID, rec *HRRecord, del bool) (*Worker, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if rec != nil {
		if err := rec.Validate(); err != nil {
			return nil, "", err
		}
	}
	now := e.now().UTC()
	var out *Worker
	var tr string
	var was Status
	err := e.commits.Update(func(tx *bolt.Tx) error {
		old, err := getWorker(tx, id)
		if err != nil {
			return fatal(err)
		}
		was = ""
		if old != nil {
			was = old.Status
		}
		if del {
			if old == nil {
				return fmt.Errorf("worker %s: %w", id, ErrNotFound)
			}
			r := old.HR
			rec = &r
		} else {
			r := *rec
			r.Groups = nil
			if old != nil {
				r.Groups = old.HR.Groups // set by group membership only
			}
			rec = &r
			if err := checkUnique(tx, id, rec); err != nil {
				return err
			}
		}
		var changed []string
		if old != nil {
			changed = ChangedFields(&old.HR, rec)
			if len(changed) == 0 && old.Deleted == del {
				out = old
				return nil // nothing new: no version bump, no audit noise
			}
		}
		out, tr = transition(old, rec, del, now, e.loc)
		if err := e.storeWorker(tx, actor, old, out, tr, changed); err != nil {
			return fatal(err)
		}
		if del {
			return fatal(e.leaveGroups(tx, actor, id, now))
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("lifecycle: store worker %s: %w", id, err)
	}
	e.countManaged(was, out)
	return out, tr, nil
}

// countManaged keeps the count of workers not terminated up to date after
// a worker went from status was ("" for new) to w's.
func (e *Engine) countManaged(was Status, w *Worker) {
	switch {
	case (was == "" || was == Terminated) && w.Status != Terminated:
		e.managed.Add(1)
	case was != "" && was != Terminated && w.Status == Terminated:
		e.managed.Add(-1)
	}
}

// storeWorker writes a changed worker, its indexes and its audit records.
func (e *Engine) storeWorker(tx *bolt.Tx, actor string, old, w *Worker, tr string, changed []string) error {
	if err := putWorker(tx, w); err != nil {
		return err
	}
	if err := updateIndexes(tx, old, w); err != nil {
		return err
	}
	typ, msg := "hr.upsert", "HR record updated"
	switch {
	case w.Deleted && (old == nil || !old.Deleted):
		typ, msg = "hr.delete", "HR record deleted"
	case old == nil:
		msg = "HR record created"
	}
	rec := &audit.Record{Type: typ, Actor: actor, Worker: string(w.ID), Message: msg,
		Details: map[string]string{"version": fmt.Sprint(w.Version), "status": string(w.Status)}}
	if len(changed) > 0 {
		rec.Details["changed"] = strings.Join(changed, ",")
	}
	if _, err := audit.Append(tx, rec, e.now); err != nil {
		return err
	}
	if tr != "" {
		return e.auditTransition(tx, actor, w, tr)
	}
	return nil
}

func (e *Engine) auditTransition(tx *bolt.Tx, actor string, w *Worker, tr string) error {
	_, err := audit.Append(tx, &audit.Record{Type: "worker.transition", Actor: actor, Worker: string(w.ID), Reason: tr,
		Message: fmt.Sprintf("%s: status %s", tr, w.Status)}, e.now)
	return err
}

// Tick brings stored statuses up to date with the clock: pending workers
// whose start date has come become active (joiners), active workers whose
// end date has passed become terminated (leavers). Each transition is
// audited with actor. It returns the transitions by worker id.
func (e *Engine) Tick(ctx context.Context, actor string) (map[connectors.WorkerID]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := e.now().UTC()
	out := map[connectors.WorkerID]string{}
	var changedStatus [][2]*Worker
	err := e.db.Update(func(tx *bolt.Tx) error {
		changedStatus = changedStatus[:0]
		ws, err := allWorkers(tx)
		if err != nil {
			return err
		}
		for _, w := range ws {
			if EffectiveStatus(&w.HR, w.Deleted, now, e.loc) == w.Status {
				continue
			}
			nw, tr := transition(w, &w.HR, w.Deleted, now, e.loc)
			nw.Version = w.Version // the HR record did not change
			if err := putWorker(tx, nw); err != nil {
				return err
			}
			changedStatus = append(changedStatus, [2]*Worker{w, nw})
			if tr != "" {
				out[w.ID] = tr
				if err := e.auditTransition(tx, actor, nw, tr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: tick: %w", err)
	}
	for _, c := range changedStatus {
		e.countManaged(c[0].Status, c[1])
	}
	return out, nil
}

// Worker returns one stored worker.
func (e *Engine) Worker(ctx context.Context, id connectors.WorkerID) (*Worker, error) {
	var w *Worker
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		w, err = getWorker(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, fmt.Errorf("worker %s: %w", id, ErrNotFound)
	}
	return w, nil
}

// Workers returns every stored worker sorted by id.
func (e *Engine) Workers(ctx context.Context) ([]*Worker, error) {
	var ws []*Worker
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		ws, err = allWorkers(tx)
		return err
	})
	return ws, err
}

// FindWorker finds a worker by id, e-mail or userName (case-insensitive).
func (e *Engine) FindWorker(ctx context.Context, key string) (*Worker, error) {
	ws, err := e.Workers(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if string(w.ID) == key || strings.EqualFold(w.HR.Email, key) || strings.EqualFold(w.HR.UserName, key) {
			return w, nil
		}
	}
	return nil, fmt.Errorf("worker %q: %w", key, ErrNotFound)
}

// PolicyWorker builds the policy's view of w: its attributes and its
// manager chain (ids and e-mails, nearest first), resolved from the
// store. Start and end dates become midnight in loc, the company
// timezone, as everywhere else.
func PolicyWorker(w *Worker, byID map[connectors.WorkerID]*Worker, loc *time.Location) *policy.Worker {
	r := &w.HR
	pw := &policy.Worker{
		ID: string(w.ID), UserName: r.UserName, Email: r.Email, DisplayName: r.DisplayName,
		GivenName: r.GivenName, FamilyName: r.FamilyName, EmployeeNumber: r.EmployeeNumber,
		WorkerType: r.WorkerType, Title: r.Title, Department: r.Department, Division: r.Division,
		Organization: r.Organization, Team: r.Team, CostCenter: r.CostCenter, Location: r.Location,
		Manager: r.Manager, Custom: r.Custom, Groups: r.Groups,
		StartDate: r.StartDate.Start(loc), EndDate: r.EndDate.Start(loc),
	}
	seen := map[connectors.WorkerID]bool{w.ID: true}
	for m := connectors.WorkerID(r.Manager); m != "" && !seen[m]; {
		seen[m] = true
		pw.ManagerChain = append(pw.ManagerChain, string(m))
		mw := byID[m]
		if mw == nil {
			break
		}
		if mw.HR.Email != "" {
			pw.ManagerChain = append(pw.ManagerChain, mw.HR.Email)
		}
		m = connectors.WorkerID(mw.HR.Manager)
	}
	return pw
}

// Person builds what the apps need to know about w.
func Person(w *Worker, byID map[connectors.WorkerID]*Worker) connectors.Person {
	r := &w.HR
	p := connectors.Person{Worker: w.ID, Email: r.Email, UserName: r.UserName, GivenName: r.GivenName,
		FamilyName: r.FamilyName, DisplayName: r.DisplayName}
	if p.DisplayName == "" {
		p.DisplayName = strings.TrimSpace(r.GivenName + " " + r.FamilyName)
	}
	if m := byID[connectors.WorkerID(r.Manager)]; m != nil {
		p.Manager = m.HR.Email
	}
	if len(r.Custom) > 0 {
		p.Attributes = make(map[string]string, len(r.Custom))
		for k, v := range r.Custom {
			p.Attributes[k] = v
		}
	}
	return p
}

// DesiredFrom converts a policy result to the planner's input.
func DesiredFrom(res *policy.Result) (desired, expired []Desired) {
	conv := func(g policy.Grant) Desired {
		d := Desired{App: g.App, Entitlement: g.Entitlement, Grace: g.Grace, Exception: len(g.Sources) > 0}
		if len(g.Sources) == 1 { // the common case, without the slice
			switch s := g.Sources[0]; {
			case s.Exception != "":
				d.Why = "exception: " + s.Exception
			case s.Role != "":
				d.Why, d.Exception = "role "+s.Role, false
			case s.Implied != "":
				d.Why, d.Exception = s.Implied, false
			}
			return d
		}
		var why []string
		for _, s := range g.Sources {
			switch {
			case s.Exception != "":
				why = append(why, "exception: "+s.Exception)
			case s.Role != "":
				why = append(why, "role "+s.Role)
				d.Exception = false
			case s.Implied != "":
				why = append(why, s.Implied)
				d.Exception = false
			}
		}
		d.Why = strings.Join(why, "; ")
		return d
	}
	desired = make([]Desired, 0, len(res.Grants))
	for _, g := range res.Grants {
		desired = append(desired, conv(g))
	}
	for _, g := range res.Expired {
		expired = append(expired, conv(g))
	}
	return desired, expired
}
