package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
)

// BenchmarkJoinerLatency measures, in the server loop, the time from an HR
// change (upsert + Notify) to "every app done" for 100 joiners arriving
// at once, with every app call taking 50 ms. A joiner of the test policy
// needs at most 4 calls in one app (chat: account, general, engineers,
// oncall), so the ideal is 200 ms; the target is p99 <= 1.2 x that.
//
//	go test -run '^$' -bench JoinerLatency -benchtime 1x ./lifecycle/
func BenchmarkJoinerLatency(b *testing.B) {
	const joiners = 100
	lat := memory.Duration(50 * time.Millisecond)
	for b.Loop() {
		env := newEnv(b, envConfig{
			start: time.Now(),
			gh:    memory.Config{Kinds: ghKinds, Latency: lat},
			chat:  memory.Config{Kinds: chatKinds, Latency: lat},
			exec:  ExecutorOptions{Concurrency: joiners, MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond},
		})
		env.clock = nil
		env.opts.Now = time.Now
		env.eng = env.newEngine()
		var (
			mu   sync.Mutex
			took []time.Duration
			all  = make(chan struct{})
		)
		onDone := func(kind string, since time.Time) {
			mu.Lock()
			if len(took) == 0 {
				b.Logf("first done after %v (since %v ago)", time.Since(t0), time.Since(since))
			}
			took = append(took, time.Since(since))
			if len(took) == joiners {
				close(all)
			}
			mu.Unlock()
		}
		var t0 time.Time
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- env.eng.Run(ctx, RunOptions{OnDone: onDone, TickInterval: time.Hour}) }()
		for !env.eng.Ready() {
			time.Sleep(time.Millisecond)
		}
		var wg sync.WaitGroup
		t0 = time.Now()
		for i := range joiners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := connectors.WorkerID(fmt.Sprintf("w-%03d", i))
				w, tr, err := env.eng.UpsertHR(ctx, "bench", HRRecord{ID: id, Email: string(id) + "@pp.com", WorkerType: "employee",
					Division: "Engineering", Team: "backend", Active: true})
				if err != nil {
					b.Error(err)
					return
				}
				env.eng.Notify(w.ID, tr)
			}()
		}
		wg.Wait()
		b.Logf("upserts took %v", time.Since(t0))
		select {
		case <-all:
		case <-time.After(60 * time.Second):
			b.Fatalf("only %d of %d joiners done after 60s", len(took), joiners)
		}
		cancel()
		<-done
		if testing.Verbose() {
			var first time.Time
			_ = env.eng.Audit().Query(context.Background(), audit.Filter{Worker: "w-050"}, func(r audit.Record) error {
				if first.IsZero() {
					first = r.Time
				}
				b.Logf("%8v %s %s %s %s %s", r.Time.Sub(first).Round(time.Millisecond), r.Type, r.App, r.Action, r.Entitlement, r.Outcome)
				return nil
			})
		}
		slices.Sort(took)
		pct := func(p float64) time.Duration { return took[int(p*float64(len(took)-1))] }
		b.ReportMetric(float64(pct(0.50).Milliseconds()), "p50-ms")
		b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99-ms")
		b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
		b.ReportMetric(200, "ideal-chain-ms")
	}
}
