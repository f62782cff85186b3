package hr

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/memory"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/policy"
)

// engineTestPolicy grants by division, worker type and HR group.
const engineTestPolicy = `version: 1
roles:
  - name: employee
    when: worker.workerType in ["employee", "intern"]
    grants:
      chat: [account, channel/general]
  - name: engineer
    when: worker.division == "Engineering"
    includes: [employee]
    grants:
      gh: [account, team/engineering]
  - name: oncall
    when: '"Oncall Rotation" in worker.groups'
    grants:
      chat: [usergroup/oncall]
`

// openTestDB opens a bbolt file in t.TempDir and checks its integrity
// when the test ends.
func openTestDB(t testing.TB) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "roster.db"), 0o600, lifecycle.DBOptions(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		if err != nil {
			t.Errorf("data file integrity: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// newTestEngine is an engine on a bbolt file with two memory apps.
func newTestEngine(t testing.TB, latency time.Duration) *lifecycle.Engine {
	t.Helper()
	db := openTestDB(t)
	now := func() time.Time { return time.Date(2026, 3, 2, 17, 0, 0, 0, time.UTC) }
	cfgs := map[string]memory.Config{
		"gh":   {Kinds: []connectors.KindSpec{{Name: "team"}}, Latency: memory.Duration(latency)},
		"chat": {Kinds: []connectors.KindSpec{{Name: "channel"}, {Name: "usergroup"}}, Latency: memory.Duration(latency)},
	}
	var apps []connectors.Connector
	cat := policy.Catalog{}
	for _, name := range []string{"chat", "gh"} {
		a, err := memory.New(name, cfgs[name], db, now)
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, a)
		cat[name] = a.Kinds()
	}
	pol, err := policy.LoadBytes("policy.yaml", []byte(engineTestPolicy), policy.Options{Catalog: cat, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	none := lifecycle.Threshold{Max: -1, MaxPercent: -1}
	e, err := lifecycle.New(lifecycle.Options{DB: db, Policy: pol, Apps: apps, Now: now,
		Safety:   lifecycle.Safety{Suspend: none, Revoke: none, Delete: none},
		Executor: lifecycle.ExecutorOptions{Concurrency: 4, MaxAttempts: 2, BackoffBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// apply runs one whole engine run and fails on failed actions.
func apply(t *testing.T, e *lifecycle.Engine) {
	t.Helper()
	ctx := context.Background()
	p, _, err := e.Prepare(ctx, "test")
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	rep, err := e.ApplyPlan(ctx, p, lifecycle.ApplyOptions{Actor: "test"})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(rep.Failed) > 0 {
		t.Fatalf("failed actions: %+v", rep.Failed)
	}
}

// holdings renders what a worker holds in every app: "app: entitlements"
// with "(suspended)", sorted.
func holdings(t *testing.T, e *lifecycle.Engine, id string) []string {
	t.Helper()
	states, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for app, st := range states {
		for _, acc := range st.Accounts {
			if string(acc.Worker) != id {
				continue
			}
			s := app + ":"
			if acc.Suspended {
				s += " (suspended)"
			}
			for _, en := range acc.Entitlements {
				s += " " + en.String()
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func wantHoldings(t *testing.T, e *lifecycle.Engine, id string, want ...string) {
	t.Helper()
	if got := holdings(t, e, id); !slices.Equal(got, want) {
		t.Errorf("holdings of %s:\n got %q\nwant %q", id, got, want)
	}
}

func TestEntraSequenceEngine(t *testing.T) {
	e := newTestEngine(t, 0)
	h := newHarness(t, e)
	runEntra(t, h)
}

func TestOktaSequenceEngine(t *testing.T) {
	e := newTestEngine(t, 0)
	h := newHarness(t, e)
	runOkta(t, h)
}

// TestSCIMDrivesGrants: SCIM writes become HR records, transitions and,
// after a run, grants in the apps; the audit log names the token.
func TestSCIMDrivesGrants(t *testing.T) {
	e := newTestEngine(t, 0)
	h := newHarness(t, e)
	r := h.do("POST", "/Users", fixture(t, "entra/create_user.json", nil)).must(t, http.StatusCreated)
	id := str(r.m, "id")
	apply(t, e)
	wantHoldings(t, e, id, "chat: channel/general", "gh: team/engineering")

	gid := str(h.do("POST", "/Groups", fixture(t, "entra/create_group.json", nil)).must(t, http.StatusCreated).m, "id")
	h.do("PATCH", "/Groups/"+gid, patchBody(`{"op":"Add","path":"members","value":[{"value":"`+id+`"}]}`)).must(t, http.StatusOK)
	apply(t, e)
	wantHoldings(t, e, id, "chat: channel/general usergroup/oncall", "gh: team/engineering")

	// Mover: out of Engineering (a path-less URN key, as Entra sends).
	h.do("PATCH", "/Users/"+id, patchBody(`{"op":"Replace","value":{"`+EnterpriseSchema+`:division":"Sales"}}`)).must(t, http.StatusOK)
	apply(t, e)
	if got := holdings(t, e, id); len(got) != 2 || strings.Contains(strings.Join(got, " "), "team/engineering") {
		t.Errorf("mover still holds engineering access: %q", got)
	}
	// Leaving the group removes its grant.
	h.do("PATCH", "/Groups/"+gid, fixture(t, "entra/patch_group_remove.json", map[string]string{"a": id})).must(t, http.StatusOK)
	apply(t, e)
	if got := strings.Join(holdings(t, e, id), " "); strings.Contains(got, "oncall") {
		t.Errorf("after leaving the group: %s", got)
	}

	// Leaver, rehire, delete.
	h.do("PATCH", "/Users/"+id, fixture(t, "entra/patch_leaver.json", nil)).must(t, http.StatusOK)
	apply(t, e)
	for _, hold := range holdings(t, e, id) {
		if !strings.Contains(hold, "(suspended)") {
			t.Errorf("leaver still active in %s", hold)
		}
	}
	h.do("PATCH", "/Users/"+id, fixture(t, "entra/patch_rehire.json", nil)).must(t, http.StatusOK)
	apply(t, e)
	wantHoldingsContain(t, e, id, "chat: channel/general")
	h.do("DELETE", "/Users/"+id, "").must(t, http.StatusNoContent)
	apply(t, e)
	for _, hold := range holdings(t, e, id) {
		if !strings.Contains(hold, "(suspended)") {
			t.Errorf("deleted worker still active in %s", hold)
		}
	}
	h.do("GET", "/Users/"+id, "").wantError(t, http.StatusNotFound, "")

	// The audit log: every HR write by the token's name, and the
	// transitions in order.
	var trs []string
	err := e.Audit().Query(context.Background(), audit.Filter{Worker: id}, func(rec audit.Record) error {
		switch {
		case strings.HasPrefix(rec.Type, "hr."):
			if rec.Actor != "scim:hr" {
				return fmt.Errorf("%s by %q, want scim:hr", rec.Type, rec.Actor)
			}
		case rec.Type == "worker.transition":
			trs = append(trs, rec.Reason)
		}
		if strings.Contains(fmt.Sprintf("%+v", rec), testToken) {
			return fmt.Errorf("the token is in audit record %d", rec.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{lifecycle.Joiner, lifecycle.Mover, lifecycle.Mover, lifecycle.Mover, lifecycle.Leaver, lifecycle.Rehire, lifecycle.Leaver}
	if !slices.Equal(trs, want) {
		t.Errorf("transitions = %v, want %v", trs, want)
	}
}

func wantHoldingsContain(t *testing.T, e *lifecycle.Engine, id string, want string) {
	t.Helper()
	if got := holdings(t, e, id); !slices.Contains(got, want) {
		t.Errorf("holdings of %s = %q, want %q among them", id, got, want)
	}
}
