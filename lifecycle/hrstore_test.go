package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/connectors"
)

func TestUniqueUserNameAndExternalID(t *testing.T) {
	env := newEnv(t, envConfig{})
	ctx := context.Background()
	env.upsert(HRRecord{ID: "w-1", UserName: "Alice@PP.com", ExternalID: "ext-1", Active: true})
	cases := []struct {
		name string
		rec  HRRecord
	}{
		{"same userName, other case", HRRecord{ID: "w-2", UserName: "alice@pp.com", Active: true}},
		{"same externalId", HRRecord{ID: "w-3", UserName: "bob@pp.com", ExternalID: "ext-1", Active: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := env.auditHead()
			if _, _, err := env.eng.UpsertHR(ctx, "scim:hr", c.rec); !errors.Is(err, ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
			if _, err := env.eng.Worker(ctx, c.rec.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("a refused worker was stored: %v", err)
			}
			if env.auditHead() != before {
				t.Errorf("a refused write was audited")
			}
		})
	}
	w, err := env.eng.WorkerByUserName(ctx, "ALICE@pp.COM")
	if err != nil || w.ID != "w-1" {
		t.Fatalf("WorkerByUserName: %v %v", w, err)
	}
	if w, err := env.eng.WorkerByExternalID(ctx, "ext-1"); err != nil || w.ID != "w-1" {
		t.Fatalf("WorkerByExternalID: %v %v", w, err)
	}
	// Renaming frees the old name; deleting frees the new one for reuse.
	env.upsert(HRRecord{ID: "w-1", UserName: "alice.s@pp.com", ExternalID: "ext-1", Active: true})
	if _, err := env.eng.WorkerByUserName(ctx, "alice@pp.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old userName still indexed: %v", err)
	}
	if _, _, err := env.eng.DeleteHR(ctx, "scim:hr", "w-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.eng.WorkerByUserName(ctx, "alice.s@pp.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleted worker is still found by userName: %v", err)
	}
	env.upsert(HRRecord{ID: "w-9", UserName: "Alice.S@pp.com", ExternalID: "ext-1", Active: true})
	if w, err := env.eng.WorkerByExternalID(ctx, "ext-1"); err != nil || w.ID != "w-9" {
		t.Errorf("reused externalId: %v %v", w, err)
	}
}

func TestIndexesRebuiltForOldDataFiles(t *testing.T) {
	env := newEnv(t, envConfig{})
	env.upsert(HRRecord{ID: "w-1", UserName: "Carol", ExternalID: "e-1", Active: true})
	// A data file written before the indexes existed.
	if err := env.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketByUserName); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketByExternalID)
	}); err != nil {
		t.Fatal(err)
	}
	eng := env.newEngine()
	if w, err := eng.WorkerByUserName(context.Background(), "carol"); err != nil || w.ID != "w-1" {
		t.Errorf("after rebuild, by userName: %v %v", w, err)
	}
	if w, err := eng.WorkerByExternalID(context.Background(), "e-1"); err != nil || w.ID != "w-1" {
		t.Errorf("after rebuild, by externalId: %v %v", w, err)
	}
}

func TestGroupsSetWorkerGroups(t *testing.T) {
	pol := `version: 1
roles:
  - name: oncall
    when: '"SRE" in worker.groups'
    grants:
      chat: [account, usergroup/oncall]
`
	env := newEnv(t, envConfig{policy: pol})
	ctx := context.Background()
	env.upsert(HRRecord{ID: "w-1", UserName: "a", Active: true})
	env.upsert(HRRecord{ID: "w-2", UserName: "b", Active: true})
	env.apply()

	g, err := env.eng.UpsertGroup(ctx, "scim:hr", HRGroup{ID: "g-1", DisplayName: "SRE", Members: []connectors.WorkerID{"w-2", "w-1", "w-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Members, []connectors.WorkerID{"w-1", "w-2"}) || g.Version != 1 {
		t.Fatalf("group %+v", g)
	}
	for _, id := range []connectors.WorkerID{"w-1", "w-2"} {
		w, _ := env.eng.Worker(ctx, id)
		if !slices.Equal(w.HR.Groups, []string{"SRE"}) || w.Transition != Mover || w.Version != 2 {
			t.Errorf("%s after joining the group: groups %v transition %q version %d", id, w.HR.Groups, w.Transition, w.Version)
		}
	}
	p, _ := env.apply()
	if got := workerSteps(p, "w-1"); !slices.Contains(got, "chat w-1 grant usergroup/oncall mover") {
		t.Errorf("group membership did not grant: %q", got)
	}
	// An HR write keeps the groups (they come from membership only).
	env.upsert(HRRecord{ID: "w-1", UserName: "a", Title: "SRE", Active: true})
	if w, _ := env.eng.Worker(ctx, "w-1"); !slices.Equal(w.HR.Groups, []string{"SRE"}) {
		t.Errorf("UpsertHR dropped the groups: %v", w.HR.Groups)
	}
	// Removing w-2 takes the access away.
	env.clock.Advance(time.Minute)
	if _, err := env.eng.UpsertGroup(ctx, "scim:hr", HRGroup{ID: "g-1", DisplayName: "SRE", Members: []connectors.WorkerID{"w-1"}}); err != nil {
		t.Fatal(err)
	}
	p, _ = env.apply()
	if got := workerSteps(p, "w-2"); !slices.Contains(got, "chat w-2 revoke usergroup/oncall mover") {
		t.Errorf("leaving the group did not revoke: %q", got)
	}
	// Unknown member: refused whole.
	if _, err := env.eng.UpsertGroup(ctx, "scim:hr", HRGroup{ID: "g-2", DisplayName: "X", Members: []connectors.WorkerID{"w-1", "w-404"}}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("unknown member: %v", err)
	}
	if _, err := env.eng.Group(ctx, "g-2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused group was stored: %v", err)
	}
	// A worker deleted in HR leaves the group.
	if _, err := env.eng.UpsertGroup(ctx, "scim:hr", HRGroup{ID: "g-3", DisplayName: "Tmp", Members: []connectors.WorkerID{"w-1", "w-2"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.eng.DeleteHR(ctx, "scim:hr", "w-2"); err != nil {
		t.Fatal(err)
	}
	if g, _ := env.eng.Group(ctx, "g-3"); !slices.Equal(g.Members, []connectors.WorkerID{"w-1"}) || g.Version != 2 {
		t.Errorf("after w-2 was deleted in HR, g-3 = %+v", g)
	}
	if err := env.eng.DeleteGroup(ctx, "scim:hr", "g-3"); err != nil {
		t.Fatal(err)
	}
	if err := env.eng.DeleteGroup(ctx, "scim:hr", "g-1"); err != nil {
		t.Fatal(err)
	}
	if w, _ := env.eng.Worker(ctx, "w-1"); len(w.HR.Groups) != 0 {
		t.Errorf("groups after the group was deleted: %v", w.HR.Groups)
	}
	if gs, _ := env.eng.Groups(ctx); len(gs) != 0 {
		t.Errorf("groups left: %v", gs)
	}
	env.verifyAudit()
}

// Many concurrent writers share commits; each gets its own answer, and
// of several creating the same userName exactly one wins.
func TestGroupCommitConcurrentWriters(t *testing.T) {
	env := newEnv(t, envConfig{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("user-%d", i)
			if i%10 == 0 {
				name = "same"
			}
			_, _, errs[i] = env.eng.UpsertHR(ctx, "scim:hr", HRRecord{ID: connectors.WorkerID(fmt.Sprintf("w-%03d", i)), UserName: name, Active: true})
		}()
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrConflict) && i%10 == 0:
			conflicts++
		default:
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if ok != 181 || conflicts != 19 {
		t.Errorf("ok %d conflicts %d, want 181 and 19", ok, conflicts)
	}
	ws, _ := env.eng.Workers(ctx)
	if len(ws) != 181 {
		t.Errorf("%d workers stored, want 181", len(ws))
	}
	env.verifyAudit()
}
