package policy

import (
	"testing"
	"time"
)

var benchNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func loadGenerated(tb testing.TB, roles int) *Set {
	tb.Helper()
	s, err := LoadBytes("generated.yaml", genPolicy(roles), Options{Catalog: genCatalog(), DefaultGrace: 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	if got := len(s.RoleNames()); got != roles {
		tb.Fatalf("generated %d roles, want %d", got, roles)
	}
	return s
}

// BenchmarkEvaluate measures one worker's evaluation (ns/op is per
// worker) against 200 roles, in steady state: the memo is warm after the
// first pass over the 100,000 distinct workers.
func BenchmarkEvaluate(b *testing.B) {
	s := loadGenerated(b, 200)
	ws := genWorkers(100_000, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Evaluate(&ws[i%len(ws)], benchNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluate100k evaluates 100,000 workers against 200 roles per
// op, starting from a freshly loaded set each time (cold memo): what one
// full reconcile costs.
func BenchmarkEvaluate100k(b *testing.B) {
	ws := genWorkers(100_000, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := loadGenerated(b, 200)
		b.StartTimer()
		for k := range ws {
			if _, err := s.Evaluate(&ws[k], benchNow); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ws)), "ns/worker")
}

// BenchmarkEvaluateNoMemo is BenchmarkEvaluate with memoization off: plain
// CEL for every (worker, role).
func BenchmarkEvaluateNoMemo(b *testing.B) {
	s := loadGenerated(b, 200)
	s.noCache = true
	ws := genWorkers(10_000, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Evaluate(&ws[i%len(ws)], benchNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad measures loading and compiling the 200-role set.
func BenchmarkLoad(b *testing.B) {
	data := genPolicy(200)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := LoadBytes("generated.yaml", data, Options{Catalog: genCatalog()}); err != nil {
			b.Fatal(err)
		}
	}
}
