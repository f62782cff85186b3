package lifecycle

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
	"github.com/rosterhq/roster/policy"
)

// fakeClock is an injectable clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openDB opens a bbolt file in t.TempDir and checks its integrity when the
// test ends.
func openDB(t testing.TB) *bolt.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roster.db")
	db, err := bolt.Open(path, 0o600, DBOptions(time.Second))
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() {
		err := db.View(func(tx *bolt.Tx) error {
			var errs []string
			for err := range tx.Check() {
				errs = append(errs, err.Error())
			}
			if len(errs) > 0 {
				return fmt.Errorf("bbolt check: %s", strings.Join(errs, "; "))
			}
			return nil
		})
		if err != nil {
			t.Errorf("data file integrity: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close db: %v", err)
		}
	})
	return db
}

// Kinds of the two test apps.
var (
	ghKinds = []connectors.KindSpec{
		{Name: "account", Roles: []string{"member", "admin"}},
		{Name: "team", Roles: []string{"member", "maintainer"}},
	}
	chatKinds = []connectors.KindSpec{
		{Name: "channel"},
		{Name: "usergroup"},
	}
)

// testPolicy is the policy of the engine tests. The Sales role has no
// GitHub grants, so moving out of Engineering removes every GitHub grant.
const testPolicy = `version: 1
roles:
  - name: employee
    when: worker.workerType in ["employee", "intern"]
    grants:
      chat: [account, channel/general]
  - name: engineer
    when: worker.division == "Engineering"
    includes: [employee]
    grace: 48h
    grants:
      gh: [account, team/engineering, "team/${worker.team}"]
      chat:
        - usergroup/engineers
        - grant: usergroup/oncall
          grace: 0s
  - name: lead
    when: worker.division == "Engineering" && worker.title.endsWith(" Lead")
    grants:
      gh: ["team/${worker.team}#maintainer"]
  - name: cto
    when: worker.title == "CTO"
    grants:
      gh: ["account#admin"]
  - name: sales
    when: worker.division == "Sales"
    grants:
      chat: [channel/sales]
exceptions:
  - worker: w-003
    grants: {gh: [team/infra]}
    reason: "migration review, ticket OPS-1"
    expires: 2026-02-01
`

func catalogOf(apps ...connectors.Connector) policy.Catalog {
	c := policy.Catalog{}
	for _, a := range apps {
		c[a.Name()] = a.Kinds()
	}
	return c
}

func loadPolicy(t testing.TB, src string, cat policy.Catalog, loc *time.Location) *policy.Set {
	t.Helper()
	set, err := policy.LoadBytes("test.yaml", []byte(src), policy.Options{Catalog: cat, Location: loc})
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	return set
}

var noLimits = Safety{
	Suspend: Threshold{Max: -1, MaxPercent: -1},
	Revoke:  Threshold{Max: -1, MaxPercent: -1},
	Delete:  Threshold{Max: -1, MaxPercent: -1},
}

// testEnv is an engine over a real bbolt file with memory apps in it.
type testEnv struct {
	t     testing.TB
	db    *bolt.DB
	clock *fakeClock
	loc   *time.Location
	apps  map[string]*memory.App
	pol   *policy.Set
	opts  Options
	eng   *Engine
}

type envConfig struct {
	loc      *time.Location
	start    time.Time
	gh, chat memory.Config
	policy   string
	catalog  policy.Catalog // nil: from the apps
	safety   *Safety
	exec     ExecutorOptions
}

func newEnv(t testing.TB, c envConfig) *testEnv {
	t.Helper()
	if c.loc == nil {
		c.loc = time.UTC
	}
	if c.start.IsZero() {
		c.start = time.Date(2026, 1, 12, 18, 0, 0, 0, time.UTC)
	}
	if c.gh.Kinds == nil {
		c.gh.Kinds = ghKinds
	}
	if c.chat.Kinds == nil {
		c.chat.Kinds = chatKinds
	}
	if c.policy == "" {
		c.policy = testPolicy
	}
	if c.exec.MaxAttempts == 0 {
		c.exec = ExecutorOptions{Concurrency: 4, MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}
	}
	env := &testEnv{t: t, db: openDB(t), clock: newClock(c.start), loc: c.loc, apps: map[string]*memory.App{}}
	commits := NewGroupCommit(env.db)
	var conns []connectors.Connector
	for name, cfg := range map[string]memory.Config{"gh": c.gh, "chat": c.chat} {
		a, err := memory.New(name, cfg, env.db, env.clock.Now)
		if err != nil {
			t.Fatalf("memory app %s: %v", name, err)
		}
		a.ShareCommits(commits.Update)
		env.apps[name] = a
		conns = append(conns, a)
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].Name() < conns[j].Name() })
	cat := c.catalog
	if cat == nil {
		cat = catalogOf(conns...)
	}
	env.pol = loadPolicy(t, c.policy, cat, c.loc)
	safety := noLimits
	if c.safety != nil {
		safety = *c.safety
	}
	env.opts = Options{DB: env.db, Policy: env.pol, Apps: conns, Location: c.loc, Safety: safety,
		Executor: c.exec, Now: env.clock.Now, Commits: commits}
	env.eng = env.newEngine()
	return env
}

// newEngine builds another engine on the same data file and apps, as a
// restarted process would.
func (env *testEnv) newEngine() *Engine {
	env.t.Helper()
	e, err := New(env.opts)
	if err != nil {
		env.t.Fatalf("new engine: %v", err)
	}
	return e
}

func (env *testEnv) upsert(r HRRecord) (*Worker, string) {
	env.t.Helper()
	w, tr, err := env.eng.UpsertHR(context.Background(), "test-hr", r)
	if err != nil {
		env.t.Fatalf("upsert %s: %v", r.ID, err)
	}
	return w, tr
}

// apply runs one whole apply (Prepare + ApplyPlan) and fails the test on
// any error or failed action.
func (env *testEnv) apply() (*Plan, *Report) {
	env.t.Helper()
	ctx := context.Background()
	p, _, err := env.eng.Prepare(ctx, "test")
	if err != nil {
		env.t.Fatalf("prepare: %v", err)
	}
	rep, err := env.eng.ApplyPlan(ctx, p, ApplyOptions{Actor: "test"})
	if err != nil {
		env.t.Fatalf("apply plan: %v", err)
	}
	if len(rep.Failed) > 0 {
		env.t.Fatalf("apply: %d failed actions: %+v", len(rep.Failed), rep.Failed)
	}
	return p, rep
}

func (env *testEnv) plan() *Plan {
	env.t.Helper()
	p, err := env.eng.Plan(context.Background(), PlanOptions{})
	if err != nil {
		env.t.Fatalf("plan: %v", err)
	}
	return p
}

// changes returns the number of effective changes each app logged.
func (env *testEnv) changes() map[string]int {
	env.t.Helper()
	out := map[string]int{}
	for name, a := range env.apps {
		cs, err := a.Changes(context.Background())
		if err != nil {
			env.t.Fatalf("changes %s: %v", name, err)
		}
		out[name] = len(cs)
	}
	return out
}

// holdings renders every app's accounts as "app worker [suspended] role:
// entitlements", sorted.
func (env *testEnv) holdings() map[connectors.WorkerID]map[string]string {
	env.t.Helper()
	out := map[connectors.WorkerID]map[string]string{}
	states, err := env.eng.Snapshot(context.Background()) // retries flaky apps
	if err != nil {
		env.t.Fatalf("snapshot: %v", err)
	}
	for name, st := range states {
		for _, acc := range st.Accounts {
			if out[acc.Worker] == nil {
				out[acc.Worker] = map[string]string{}
			}
			out[acc.Worker][name] = accountText(acc)
		}
	}
	return out
}

func accountText(acc connectors.AccountState) string {
	var b strings.Builder
	b.WriteString("account")
	if acc.Role != "" {
		b.WriteString("#" + acc.Role)
	}
	if acc.Suspended {
		b.WriteString(" (suspended)")
	}
	for _, e := range acc.Entitlements {
		b.WriteString(" " + e.String())
	}
	return b.String()
}

// wantHoldings is what the policy says every active worker should hold,
// in the form of holdings.
func (env *testEnv) wantHoldings() map[connectors.WorkerID]map[string]string {
	env.t.Helper()
	ws, err := env.eng.Workers(context.Background())
	if err != nil {
		env.t.Fatal(err)
	}
	byID := map[connectors.WorkerID]*Worker{}
	for _, w := range ws {
		byID[w.ID] = w
	}
	now := env.clock.Now()
	out := map[connectors.WorkerID]map[string]string{}
	for _, w := range ws {
		if EffectiveStatus(&w.HR, w.Deleted, now, env.loc) != Active {
			continue
		}
		res, err := env.pol.Evaluate(PolicyWorker(w, byID, env.loc), now)
		if err != nil {
			env.t.Fatal(err)
		}
		per := map[string]*connectors.AccountState{}
		for _, g := range res.Grants {
			acc := per[g.App]
			if acc == nil {
				acc = &connectors.AccountState{}
				per[g.App] = acc
			}
			if g.Entitlement.IsAccount() {
				acc.Role = g.Entitlement.Role
				continue
			}
			acc.Entitlements = append(acc.Entitlements, g.Entitlement)
		}
		out[w.ID] = map[string]string{}
		for app, acc := range per {
			if acc.Role == "" && app == "gh" {
				acc.Role = "member" // the memory app's default account role
			}
			connectors.SortEntitlements(acc.Entitlements)
			out[w.ID][app] = accountText(*acc)
		}
	}
	return out
}

// auditRecords returns every audit record.
func (env *testEnv) auditRecords() []audit.Record {
	env.t.Helper()
	var out []audit.Record
	if err := env.eng.Audit().Query(context.Background(), audit.Filter{}, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		env.t.Fatalf("audit query: %v", err)
	}
	return out
}

func (env *testEnv) verifyAudit() {
	env.t.Helper()
	if _, err := env.eng.Audit().Verify(context.Background()); err != nil {
		env.t.Fatalf("audit verify: %v", err)
	}
}

// checkIntentOutcome asserts every action.intent has exactly one
// action.outcome (same plan and action id) and vice versa.
func (env *testEnv) checkIntentOutcome() {
	env.t.Helper()
	intents, outcomes := map[string]int{}, map[string]int{}
	for _, r := range env.auditRecords() {
		k := r.PlanID + "/" + r.ActionID
		switch r.Type {
		case "action.intent":
			intents[k]++
		case "action.outcome":
			outcomes[k]++
		}
	}
	if len(intents) == 0 {
		env.t.Fatal("no action.intent records")
	}
	for k, n := range intents {
		if n != 1 || outcomes[k] != 1 {
			env.t.Errorf("action %s: %d intents, %d outcomes; want 1 and 1", k, n, outcomes[k])
		}
	}
	for k, n := range outcomes {
		if intents[k] == 0 {
			env.t.Errorf("action %s: %d outcomes without intent", k, n)
		}
	}
}

// company is a small staff: a CTO, two engineers (one a lead), a sales
// rep and a future joiner.
func company() []HRRecord {
	return []HRRecord{
		{ID: "w-001", Email: "richard@pp.com", UserName: "richard", GivenName: "Richard", FamilyName: "Hendricks",
			WorkerType: "employee", Title: "CTO", Division: "Engineering", Team: "platform", StartDate: "2020-01-01", Active: true},
		{ID: "w-002", Email: "gilfoyle@pp.com", UserName: "gilfoyle", WorkerType: "employee", Title: "Backend Lead",
			Division: "Engineering", Team: "backend", Manager: "w-001", StartDate: "2021-01-01", Active: true},
		{ID: "w-003", Email: "dinesh@pp.com", UserName: "dinesh", WorkerType: "employee", Title: "Engineer",
			Division: "Engineering", Team: "frontend", Manager: "w-002", StartDate: "2021-01-01", Active: true},
		{ID: "w-004", Email: "jared@pp.com", UserName: "jared", WorkerType: "employee", Title: "Account Executive",
			Division: "Sales", Manager: "w-001", StartDate: "2022-01-01", Active: true},
		{ID: "w-005", Email: "laurie@pp.com", UserName: "laurie", WorkerType: "contractor", Title: "Engineer",
			Division: "Engineering", Team: "backend", Manager: "w-002", StartDate: "2026-03-01", Active: true},
	}
}

func (env *testEnv) importCompany() {
	env.t.Helper()
	for _, r := range company() {
		env.upsert(r)
	}
}

// stepTexts renders a plan's steps as "app kind entitlement reason
// [from X]".
func stepTexts(p *Plan) []string {
	out := make([]string, 0, len(p.Steps))
	for _, s := range p.Steps {
		out = append(out, stepText(s))
	}
	return out
}

func stepText(s Step) string {
	t := fmt.Sprintf("%s %s %s %s %s", s.Action.App, s.Action.Person.Worker, s.Action.Kind, s.Action.Entitlement, s.Action.Reason)
	if s.From != "" {
		t += " from " + s.From
	}
	return t
}
