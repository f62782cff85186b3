package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// benchRecord is a typical action outcome, about 330 bytes stored.
func benchRecord(i int) *Record {
	return &Record{
		Type:        "action.outcome",
		Actor:       "scheduler",
		Worker:      fmt.Sprintf("worker%06d@piedpiper.com", i%5000),
		App:         "github",
		Action:      "grant",
		Entitlement: "github:team/backend#member",
		Reason:      "joiner",
		Outcome:     "ok",
		PlanID:      fmt.Sprintf("plan-%08d", i/100),
		ActionID:    fmt.Sprintf("plan-%08d/%d", i/100, i%100),
		Details:     map[string]string{"attempt": "1", "latencyMs": "182"},
	}
}

// BenchmarkAppend measures one record per fsync'd transaction.
func BenchmarkAppend(b *testing.B) {
	l := New(openDB(b), fakeClock(t0, time.Millisecond))
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := l.Append(ctx, benchRecord(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAppendBatch measures 1,000 records per fsync'd transaction;
// one op is one transaction.
func BenchmarkAppendBatch(b *testing.B) {
	const batch = 1000
	db := openDB(b)
	now := fakeClock(t0, time.Millisecond)
	i := 0
	for b.Loop() {
		if err := db.Update(func(tx *bolt.Tx) error {
			for range batch {
				if _, err := Append(tx, benchRecord(i), now); err != nil {
					return err
				}
				i++
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/record")
}

// BenchmarkVerify1M builds a 1,000,000-record log once (not timed) and
// times Verify over it. One op is one full verification.
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "roster.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(Init); err != nil {
		b.Fatal(err)
	}
	now := fakeClock(t0, time.Millisecond)
	for start := 0; start < n; start += 10_000 {
		if err := db.Update(func(tx *bolt.Tx) error {
			for i := start; i < start+10_000; i++ {
				if _, err := Append(tx, benchRecord(i), now); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	l := New(db, nil)
	ctx := context.Background()
	for b.Loop() {
		res, err := l.Verify(ctx)
		if err != nil || res.Records != n {
			b.Fatalf("Verify: %+v, %v", res, err)
		}
	}
	// After the loop: b.Loop resets metrics reported before it.
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "MB-file")
	}
}
