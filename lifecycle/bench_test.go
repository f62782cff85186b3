package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/policy"
)

// The planning benchmark: a generated company with 200 roles over 6 apps,
// policy evaluation and Compute for every worker, the way Engine.Plan
// does it (minus reading the data file and the apps).
//
//	go test -run '^$' -bench Plan -benchmem -benchtime 1x ./lifecycle/
//
// ns/op is the time to plan the whole company once (wall clock; cpu-s is
// the process's CPU time, GC included, which other load on the machine
// does not inflate); eval-s, ledger-s and compute-s split the wall time
// into policy evaluation (with PolicyWorker and DesiredFrom), reading
// ledgers from the data file, and the planner. peak-heap-MiB is the
// largest HeapInuse seen while planning, with the generated workers and
// app states (base-heap-MiB) included; plan-live-MiB is what the finished
// plan keeps.

var benchApps = []string{"github", "google", "hubspot", "jira", "ldap", "slack"}

var benchCatalog = policy.Catalog{
	"github": {{Name: "account", Roles: []string{"member", "admin"}}, {Name: "team", Roles: []string{"member", "maintainer"}},
		{Name: "repo", Roles: []string{"read", "write", "admin"}}},
	"google":  {{Name: "group", Roles: []string{"MEMBER", "MANAGER", "OWNER"}}},
	"hubspot": {{Name: "team"}, {Name: "role"}},
	"jira":    {{Name: "project", Roles: []string{"viewer", "developer", "admin"}}},
	"ldap":    {{Name: "group"}},
	"slack":   {{Name: "channel"}, {Name: "usergroup"}},
}

type benchDivision struct {
	name   string
	weight int
	depts  []string
	tech   bool // engineering-like: github and jira
}

var benchDivisions = []benchDivision{
	{"Engineering", 35, []string{"Platform", "Product Engineering", "Infrastructure", "Data", "Security", "Mobile"}, true},
	{"Product", 8, []string{"Product Management", "Design", "Research"}, true},
	{"Sales", 20, []string{"Enterprise Sales", "Mid-Market", "SMB", "Sales Engineering", "Partnerships"}, false},
	{"Marketing", 8, []string{"Brand", "Growth", "Content", "Events"}, false},
	{"Support", 14, []string{"Tier 1", "Tier 2", "Customer Success", "Support Operations"}, false},
	{"Finance", 5, []string{"Accounting", "FP&A", "Procurement"}, false},
	{"People", 4, []string{"Recruiting", "People Operations", "Learning"}, false},
	{"Operations", 6, []string{"IT", "Facilities", "Legal", "Security Operations", "Business Operations"}, false},
}

var benchLocations = []string{"San Francisco", "New York", "Austin", "Seattle", "London", "Berlin", "Dublin", "Bangalore", "Singapore", "Remote"}

func slug(s string) string {
	return strings.NewReplacer(" ", "-", "&", "and").Replace(strings.ToLower(s))
}

// benchTeams lists a department's teams.
func benchTeams(dept string) []string {
	out := make([]string, 6)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", slug(dept), i+1)
	}
	return out
}

// benchPolicy generates a policy set of exactly 200 roles.
func benchPolicy() string {
	var b strings.Builder
	n := 0
	role := func(name, when string, includes []string, grace string, grants map[string][]string) {
		n++
		fmt.Fprintf(&b, "  - name: %s\n", name)
		if when != "" {
			fmt.Fprintf(&b, "    when: '%s'\n", strings.ReplaceAll(when, "'", "''"))
		}
		if len(includes) > 0 {
			fmt.Fprintf(&b, "    includes: [%s]\n", strings.Join(includes, ", "))
		}
		if grace != "" {
			fmt.Fprintf(&b, "    grace: %s\n", grace)
		}
		b.WriteString("    grants:\n")
		for _, app := range benchApps {
			if gs := grants[app]; len(gs) > 0 {
				fmt.Fprintf(&b, "      %s: [%s]\n", app, `"`+strings.Join(gs, `", "`)+`"`)
			}
		}
	}
	b.WriteString("version: 1\nroles:\n")
	role("employee", `worker.workerType in ["employee", "intern"]`, nil, "", map[string][]string{
		"google": {"account", "group/all@corp.com"}, "slack": {"account", "channel/general", "channel/random"}, "ldap": {"account", "group/staff"}})
	role("contractor", `worker.workerType == "contractor"`, nil, "", map[string][]string{
		"slack": {"account", "channel/contractors"}, "ldap": {"account", "group/contractors"}})
	role("vendor", `worker.workerType == "vendor"`, nil, "", map[string][]string{"ldap": {"group/vendors"}})
	role("intern", `worker.workerType == "intern"`, nil, "", map[string][]string{"slack": {"channel/interns"}})
	role("managers", `worker.title in ["Manager", "Director", "VP"]`, nil, "", map[string][]string{
		"google": {"group/managers@corp.com"}, "slack": {"channel/managers"}, "hubspot": {"role/Reporting"}})
	role("github-user", `has(worker.custom.githubUsername)`, nil, "", map[string][]string{"github": {"account", "repo/handbook#read"}})
	for i := 1; i <= 8; i++ {
		role(fmt.Sprintf("exec-org-%d", i), fmt.Sprintf(`"w-%06d" in worker.managerChain`, i), nil, "", map[string][]string{
			"slack": {fmt.Sprintf("channel/org-%d", i)}, "google": {fmt.Sprintf("group/org-%d@corp.com", i)}})
	}
	for _, loc := range benchLocations {
		role("loc-"+slug(loc), fmt.Sprintf(`worker.location == "%s"`, loc), nil, "", map[string][]string{
			"slack": {"channel/loc-" + slug(loc)}, "google": {"group/loc-" + slug(loc) + "@corp.com"}})
	}
	for _, d := range benchDivisions {
		ds := slug(d.name)
		g := map[string][]string{"google": {"group/" + ds + "@corp.com"}, "slack": {"channel/" + ds}, "ldap": {"group/" + ds}}
		if d.tech {
			g["github"] = []string{"account", "team/" + ds, "repo/" + ds + "#write"}
			g["jira"] = []string{"account", "project/" + ds + "#developer"}
		} else {
			g["hubspot"] = []string{"account", "team/" + ds}
		}
		role("div-"+ds, fmt.Sprintf(`worker.division == "%s" && worker.workerType != "vendor"`, d.name), []string{"employee"}, "72h", g)
		tg := map[string][]string{"slack": {"usergroup/${worker.team}"}}
		if d.tech {
			tg["github"] = []string{"team/${worker.team}"}
			tg["jira"] = []string{"project/${worker.team}"}
		} else {
			tg["hubspot"] = []string{"team/${worker.team}"}
		}
		role("team-"+ds, fmt.Sprintf(`worker.division == "%s" && worker.team != ""`, d.name), nil, "48h", tg)
		lg := map[string][]string{"google": {"group/${worker.team}@corp.com#MANAGER"}}
		if d.tech {
			lg["github"] = []string{"team/${worker.team}#maintainer"}
			lg["jira"] = []string{"project/${worker.team}#admin"}
		}
		role("lead-"+ds, fmt.Sprintf(`worker.division == "%s" && worker.title.endsWith(" Lead")`, d.name), []string{"div-" + ds}, "", lg)
	}
	for _, d := range benchDivisions {
		for _, dept := range d.depts {
			role("dept-"+slug(dept), fmt.Sprintf(`worker.department == "%s"`, dept), nil, "", map[string][]string{
				"slack": {"usergroup/" + slug(dept)}, "google": {"group/" + slug(dept) + "@corp.com"}})
		}
	}
	for _, d := range benchDivisions {
		ds := slug(d.name)
		g := map[string][]string{"slack": {"usergroup/" + ds + "-seniors"}}
		if d.tech {
			g["github"] = []string{"repo/" + ds + "-design-docs#write"}
		}
		role("seniors-"+ds, fmt.Sprintf(`worker.division == "%s" && worker.title.startsWith("Senior")`, d.name), nil, "", g)
	}
	// Fill up to 200 with department × worker type and division ×
	// location roles.
	for _, d := range benchDivisions {
		for _, dept := range d.depts {
			if n >= 200 {
				break
			}
			role(slug(dept)+"-contractors", fmt.Sprintf(`worker.department == "%s" && worker.workerType == "contractor"`, dept),
				nil, "", map[string][]string{"ldap": {"group/" + slug(dept) + "-contractors"}})
		}
	}
	for _, d := range benchDivisions {
		for _, loc := range benchLocations {
			if n >= 200 {
				break
			}
			role(fmt.Sprintf("%s-in-%s", slug(d.name), slug(loc)), fmt.Sprintf(`worker.division == "%s" && worker.location == "%s"`, d.name, loc),
				nil, "", map[string][]string{"slack": {fmt.Sprintf("channel/%s-%s", slug(d.name), slug(loc))}})
		}
	}
	if n != 200 {
		panic(fmt.Sprintf("bench policy has %d roles, want 200", n))
	}
	b.WriteString("exceptions:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "  - worker: w-%06d\n    grants: {github: [repo/secrets]}\n    reason: ticket SEC-%d\n    expires: 2027-01-31\n", 100+i*97, i)
	}
	return b.String()
}

// benchCompany is a generated company and the apps' state.
type benchCompany struct {
	workers []*Worker
	// ledgers in their stored form (what Engine.Plan decodes from the
	// data file, one worker at a time)
	ledgers map[connectors.WorkerID]storedLedger
	actual  map[string]*connectors.State
	now     time.Time
}

func pickWeighted(r *rand.Rand) benchDivision {
	n := r.IntN(100)
	for _, d := range benchDivisions {
		if n < d.weight {
			return d
		}
		n -= d.weight
	}
	return benchDivisions[0]
}

func genCompany(b *testing.B, n int, pol *policy.Set) *benchCompany {
	r := rand.New(rand.NewPCG(uint64(n), 99))
	c := &benchCompany{ledgers: map[connectors.WorkerID]storedLedger{}, actual: map[string]*connectors.State{},
		now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	long := c.now.AddDate(-1, 0, 0)
	for i := range n {
		id := connectors.WorkerID(fmt.Sprintf("w-%06d", i+1))
		d := pickWeighted(r)
		dept := d.depts[r.IntN(len(d.depts))]
		rec := HRRecord{ID: id, Email: fmt.Sprintf("u%06d@corp.com", i+1), UserName: fmt.Sprintf("u%06d", i+1),
			GivenName: "Given", FamilyName: fmt.Sprintf("Family%d", i), EmployeeNumber: fmt.Sprint(10000 + i),
			Division: d.name, Department: dept, Location: benchLocations[r.IntN(len(benchLocations))],
			CostCenter: fmt.Sprintf("CC-%d", r.IntN(40)), Organization: "Corp", StartDate: "2023-03-01", Active: true}
		if i > 0 { // a tree with fan-out 8: chains of about six managers
			rec.Manager = fmt.Sprintf("w-%06d", (i-1)/8+1)
		}
		if r.IntN(10) > 0 {
			teams := benchTeams(dept)
			rec.Team = teams[r.IntN(len(teams))]
		}
		switch x := r.IntN(100); {
		case x < 80:
			rec.WorkerType = "employee"
		case x < 92:
			rec.WorkerType = "contractor"
			rec.EndDate = "2027-12-31"
		case x < 97:
			rec.WorkerType = "intern"
		default:
			rec.WorkerType = "vendor"
		}
		switch x := r.IntN(100); {
		case x < 6:
			rec.Title = "Squad Lead"
		case x < 11:
			rec.Title = "Manager"
		case x < 13:
			rec.Title = "Director"
		case x < 14:
			rec.Title = "VP"
		case d.tech:
			rec.Title = []string{"Engineer", "Senior Engineer", "Staff Engineer"}[r.IntN(3)]
		default:
			rec.Title = []string{"Associate", "Specialist", "Senior Specialist"}[r.IntN(3)]
		}
		if d.tech && r.IntN(10) > 1 {
			rec.Custom = map[string]string{"githubUsername": fmt.Sprintf("gh-u%d", i+1)}
		}
		w := &Worker{ID: id, HR: rec, Status: Active, Version: 1, CreatedAt: long, UpdatedAt: long}
		switch x := r.IntN(100); {
		case x < 3:
			w.HR.StartDate = "2026-07-01"
			w.Status, w.Transition = Pending, Joiner
		case x < 8:
			w.HR.Active = false
			w.Status, w.TerminatedAt = Terminated, c.now.AddDate(0, 0, -r.IntN(60))
			if r.IntN(5) == 0 {
				w.Transition = Leaver
			}
		case x < 10:
			w.Transition, w.MovedAt = Mover, c.now.Add(-time.Duration(r.IntN(96))*time.Hour)
		}
		c.workers = append(c.workers, w)
	}

	// The apps' state: 90% of the active workers already provisioned
	// (a few with drift), leavers mostly suspended, some orphans.
	byID := make(map[connectors.WorkerID]*Worker, n)
	for _, w := range c.workers {
		byID[w.ID] = w
	}
	for _, app := range benchApps {
		c.actual[app] = &connectors.State{App: app, Accounts: make([]connectors.AccountState, 0, n)}
	}
	rogue := connectors.Entitlement{Kind: "group", Resource: "rogue"}
	for _, w := range c.workers {
		if w.Status == Pending {
			continue
		}
		res, err := pol.Evaluate(PolicyWorker(w, byID, time.UTC), c.now)
		if err != nil {
			b.Fatal(err)
		}
		if w.Status == Active && r.IntN(10) == 0 {
			continue // a joiner: nothing yet
		}
		l := storedLedger{}
		per := map[string]*connectors.AccountState{}
		for _, g := range res.Grants {
			acc := per[g.App]
			if acc == nil {
				acc = &connectors.AccountState{ID: connectors.AccountID("a-" + string(w.ID)), Worker: w.ID, Email: w.HR.Email}
				per[g.App] = acc
			}
			l[g.App] = append(l[g.App], LedgerEntry{Entitlement: g.Entitlement, Since: long, Grace: g.Grace})
			if g.Entitlement.IsAccount() {
				acc.Role = g.Entitlement.Role
				continue
			}
			acc.Entitlements = append(acc.Entitlements, g.Entitlement)
		}
		for _, app := range benchApps {
			acc := per[app]
			if acc == nil {
				continue
			}
			switch {
			case w.Status == Terminated && w.Transition == "":
				acc.Suspended, acc.Entitlements = true, nil // an earlier run finished the leaver
			case r.IntN(30) == 0 && len(acc.Entitlements) > 0:
				acc.Entitlements = acc.Entitlements[1:] // removed by hand
			case r.IntN(30) == 0:
				acc.Entitlements = append(acc.Entitlements, rogue) // added by hand
				connectors.SortEntitlements(acc.Entitlements)
			}
			c.actual[app].Accounts = append(c.actual[app].Accounts, *acc)
		}
		c.ledgers[w.ID] = l
	}
	// Movers moved after the state was read: a new team (and for some a
	// new department) in the same division.
	for _, w := range c.workers {
		if w.Transition != Mover {
			continue
		}
		d := benchDivisions[0]
		for _, x := range benchDivisions {
			if x.name == w.HR.Division {
				d = x
			}
		}
		if r.IntN(2) == 0 {
			w.HR.Department = d.depts[r.IntN(len(d.depts))]
		}
		teams := benchTeams(w.HR.Department)
		w.HR.Team = teams[r.IntN(len(teams))]
	}
	for i := range 200 {
		st := c.actual[benchApps[i%len(benchApps)]]
		st.Accounts = append(st.Accounts, connectors.AccountState{ID: connectors.AccountID(fmt.Sprintf("z-orphan-%03d", i)),
			Email: fmt.Sprintf("old%d@corp.com", i)})
	}
	return c
}

// phases accumulates the time spent in each part of planning.
type phases struct {
	eval, ledger, plan time.Duration
}

// planCompany is Engine.Plan (planWith and planWorkers) over the
// generated company: the same steps per worker in the same order, each
// worker's ledger read from the data file with getLedger. Only the
// decoding of the workers themselves (allWorkers) and the apps' snapshots
// are left out: the workers and states are given in memory. As in the
// engine, a ledger is read only when the planner needs it.
func planCompany(db *bolt.DB, c *benchCompany, pol *policy.Set, loc *time.Location, ph *phases) (*Plan, error) {
	in := Input{Now: c.now, Apps: benchApps, Actual: c.actual, Retention: 90 * 24 * time.Hour, Transfers: map[string]bool{"google": true}}
	pl := newPlanner(in)
	byID := make(map[connectors.WorkerID]*Worker, len(c.workers))
	for _, w := range c.workers {
		byID[w.ID] = w
	}
	err := db.View(func(tx *bolt.Tx) error {
		for _, w := range c.workers {
			t0 := time.Now()
			cw := *w
			cw.Status = EffectiveStatus(&w.HR, w.Deleted, c.now, loc)
			if cw.Status != w.Status {
				nw, _ := transition(w, &w.HR, w.Deleted, c.now, loc)
				cw = *nw
			}
			pw := PlanWorker{Worker: &cw, Person: Person(w, byID)}
			if cw.Status == Active {
				res, err := pol.Evaluate(PolicyWorker(w, byID, time.UTC), c.now)
				if err != nil {
					return err
				}
				pw.Desired, pw.Expired = DesiredFrom(res)
			}
			id := w.ID
			pw.loadLedger = func() (Ledger, error) {
				t := time.Now()
				defer func() { ph.ledger += time.Since(t) }()
				return getLedger(tx, id)
			}
			t1 := time.Now()
			pl.add(&pw)
			ph.eval += t1.Sub(t0)
			ph.plan += time.Since(t1) // ledger reads included, subtracted below
		}
		return nil
	})
	ph.plan -= ph.ledger
	if err == nil {
		err = pl.err
	}
	if err != nil {
		return nil, err
	}
	return pl.finish(), nil
}

// storeLedgers writes the generated ledgers to a data file, as the
// executor would have, and drops them from memory.
func storeLedgers(b *testing.B, c *benchCompany) *bolt.DB {
	db := openDB(b)
	if err := InitStore(db); err != nil {
		b.Fatal(err)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for id, l := range c.ledgers {
			if err := putJSON(tx, bucketLedger, []byte(id), l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	c.ledgers = nil
	return db
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakHeap samples HeapInuse until stop is called and returns the peak.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak.Load()
	}
}

func BenchmarkPlan(b *testing.B) {
	src := []byte(benchPolicy())
	load := func() *policy.Set {
		s, err := policy.LoadBytes("bench.yaml", src, policy.Options{Catalog: benchCatalog, DefaultGrace: 24 * time.Hour})
		if err != nil {
			b.Fatalf("bench policy: %v", err)
		}
		return s
	}
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			c := genCompany(b, n, load())
			db := storeLedgers(b, c)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			var (
				peak, retained uint64
				cpu            time.Duration
				ph             phases
				p              *Plan
			)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				pol := load() // a cold evaluation memo, as after a policy load
				p = nil
				runtime.GC()
				stop := peakHeap()
				cpu0 := cpuTime()
				b.StartTimer()
				var err error
				p, err = planCompany(db, c, pol, time.UTC, &ph)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += cpuTime() - cpu0
				peak = max(peak, stop())
				runtime.GC()
				runtime.ReadMemStats(&ms)
				retained = ms.HeapAlloc - min(ms.HeapAlloc, base)
				b.StartTimer()
			}
			b.StopTimer()
			s := p.Summary()
			if p.Managed < n*9/10 || s.Create == 0 || s.Grant == 0 || s.Revoke == 0 || s.Suspend == 0 || s.Orphans != 200 || len(p.Deferred) == 0 {
				b.Fatalf("unexpected plan: managed %d, %+v, %d deferred", p.Managed, s, len(p.Deferred))
			}
			per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(base)/(1<<20), "base-heap-MiB")
			b.ReportMetric(float64(retained)/(1<<20), "plan-live-MiB")
			b.ReportMetric(per(cpu), "cpu-s")
			b.ReportMetric(per(ph.eval), "eval-s")
			b.ReportMetric(per(ph.ledger), "ledger-s")
			b.ReportMetric(per(ph.plan), "compute-s")
			b.ReportMetric(float64(len(p.Steps)), "steps")
		})
	}
}
