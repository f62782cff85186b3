package hr

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

func BenchmarkTmpEngine(b *testing.B) {
	e := newTestEngine(b, 0)
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, _, err := e.UpsertHR(b.Context(), "x", lifecycle.HRRecord{ID: connectors.WorkerID(fmt.Sprintf("w-%d", i)), UserName: fmt.Sprintf("u%d", i), Active: true, Title: "Engineer", Department: "Engineering", Division: "Engineering", Email: "x@y"})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
