package lifecycle

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
)

// serving starts Run on env's engine and returns a stop function that
// cancels it and waits for it to return.
func serving(t *testing.T, env *testEnv, o RunOptions) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.eng.Run(ctx, o) }()
	waitFor(t, "ready", env.eng.Ready)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type doneLog struct {
	mu    sync.Mutex
	kinds []string
}

func (d *doneLog) add(kind string, since time.Time) {
	d.mu.Lock()
	d.kinds = append(d.kinds, kind)
	d.mu.Unlock()
}

func (d *doneLog) count(kind string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, k := range d.kinds {
		if k == kind {
			n++
		}
	}
	return n
}

func TestRunCarriesOutNotifiedChanges(t *testing.T) {
	env := newEnv(t, envConfig{})
	env.importCompany()
	var dl doneLog
	stop := serving(t, env, RunOptions{TickInterval: 5 * time.Millisecond, OnDone: dl.add})
	defer stop()
	// The initial full reconcile provisioned the company.
	want := env.wantHoldings()
	waitFor(t, "company provisioned", func() bool { return equalHoldingsActive(env.holdings(), want) })

	ctx := context.Background()
	holds := func(id connectors.WorkerID, app, text string) func() bool {
		return func() bool { return strings.Contains(env.holdings()[id][app], text) }
	}
	// A joiner.
	w, tr := env.upsert(HRRecord{ID: "w-100", Email: "new@pp.com", WorkerType: "employee", Division: "Engineering", Team: "backend", Active: true})
	env.eng.Notify(w.ID, tr)
	waitFor(t, "joiner provisioned", holds("w-100", "gh", "team/backend#member"))
	waitFor(t, "joiner done", func() bool { return dl.count(Joiner) == 1 })
	// A leaver.
	r := company()[3]
	r.Active = false
	w, tr = env.upsert(r)
	env.eng.Notify(w.ID, tr)
	waitFor(t, "leaver suspended", holds("w-004", "chat", "suspended"))
	waitFor(t, "leaver done", func() bool { return dl.count(Leaver) == 1 })
	// Rapid changes to one worker: each carried out, none twice.
	before := env.changes()
	for _, team := range []string{"frontend", "mobile", "data"} {
		r := HRRecord{ID: "w-100", Email: "new@pp.com", WorkerType: "employee", Division: "Engineering", Team: team, Active: true}
		w, tr := env.upsert(r)
		env.eng.Notify(w.ID, tr)
	}
	waitFor(t, "last move carried out", holds("w-100", "gh", "team/data#member"))
	waitFor(t, "outbox empty", func() bool { items, _ := env.eng.Outbox(ctx); return len(items) == 0 })
	noDuplicateChanges(t, env)
	if after := env.changes(); after["gh"]-before["gh"] > 6 {
		t.Errorf("gh changes for three moves: %d, want at most 6 (3 grants, 3 revokes)", after["gh"]-before["gh"])
	}
	stop()
	// After the loop, a fresh full plan finds nothing to do.
	if p := env.plan(); !p.Empty() {
		t.Errorf("plan after the server loop: %q", stepTexts(p))
	}
	env.verifyAudit()
	env.checkIntentOutcome()
}

func TestRunSchedulerActivatesStartDate(t *testing.T) {
	env := newEnv(t, envConfig{})
	var dl doneLog
	stop := serving(t, env, RunOptions{TickInterval: 2 * time.Millisecond, OnDone: dl.add})
	defer stop()
	start := env.clock.Now().Add(48 * time.Hour).Format(time.DateOnly)
	w, tr := env.upsert(HRRecord{ID: "w-7", Email: "f@pp.com", WorkerType: "employee", Division: "Sales", StartDate: Date(start), Active: true})
	env.eng.Notify(w.ID, tr)
	time.Sleep(20 * time.Millisecond)
	if h := env.holdings()["w-7"]; len(h) != 0 {
		t.Fatalf("a pending hire got access before the start date: %v", h)
	}
	env.clock.Advance(49 * time.Hour)
	waitFor(t, "activated on the start date", func() bool { return strings.Contains(env.holdings()["w-7"]["chat"], "channel/sales") })
}

func TestRunShutdownLeavesInterruptedActionsInOutbox(t *testing.T) {
	env := newEnv(t, envConfig{gh: memory.Config{Kinds: ghKinds, Latency: memory.Duration(30 * time.Millisecond)},
		exec: ExecutorOptions{Concurrency: 1, MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.eng.Run(ctx, RunOptions{}) }()
	waitFor(t, "ready", env.eng.Ready)
	for _, r := range company() {
		w, tr := env.upsert(r)
		env.eng.Notify(w.ID, tr)
	}
	waitFor(t, "some gh work started", func() bool { return env.changes()["gh"] > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A restarted engine finishes the rest exactly once.
	env.eng = env.newEngine()
	env.apply()
	if p := env.plan(); !p.Empty() {
		t.Errorf("after restart: %q", stepTexts(p))
	}
	noDuplicateChanges(t, env)
	env.verifyAudit()
}
