package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/connectortest"
	bolt "go.etcd.io/bbolt"
)

// jsonSettings is a connectors.Settings holding a JSON settings block.
type jsonSettings string

func (s jsonSettings) Decode(v any) error {
	dec := json.NewDecoder(strings.NewReader(string(s)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// openDB opens a bbolt file and, on cleanup, checks its integrity and
// closes it.
func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Errorf("bbolt integrity: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close db: %v", err)
		}
	})
	return db
}

func tempDB(t testing.TB) *bolt.DB {
	t.Helper()
	return openDB(t, filepath.Join(t.TempDir(), "roster.db"))
}

const githubSettings = `{
	"kinds": [
		{"name": "account", "roles": ["member", "admin"]},
		{"name": "team", "roles": ["member", "maintainer"], "doc": "GitHub team"},
		{"name": "repo"}
	]
}`

const slackSettings = `{
	"kinds": [{"name": "usergroup"}, {"name": "channel"}],
	"suspend_drops_grants": true
}`

func openApp(t testing.TB, db *bolt.DB, name, settings string) *App {
	t.Helper()
	c, err := Open(context.Background(), connectors.Env{
		Name:     name,
		Settings: jsonSettings(settings),
		DB:       db,
		Now:      func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.FixedZone("CET", 3600)) },
	})
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	return c.(*App)
}

// fastDB is a tempDB that skips fsync: the conformance runs make hundreds
// of commits, and durability is tested by TestStateSurvivesReopen.
func fastDB(t *testing.T) *bolt.DB {
	db := tempDB(t)
	db.NoSync = true
	return db
}

func TestConformance(t *testing.T) {
	t.Run("github", func(t *testing.T) {
		connectortest.Run(t, func(t *testing.T) connectortest.Target {
			return connectortest.Target{
				Connector: openApp(t, fastDB(t), "github", githubSettings),
				Grants: []connectors.Entitlement{
					{Kind: "team", Resource: "backend"},
					{Kind: "team", Resource: "infra", Role: "maintainer"},
					{Kind: "repo", Resource: "roster"},
				},
				SuspendKeepsGrants: true,
			}
		})
	})
	t.Run("slack", func(t *testing.T) {
		connectortest.Run(t, func(t *testing.T) connectortest.Target {
			return connectortest.Target{
				Connector: openApp(t, fastDB(t), "slack", slackSettings),
				Grants: []connectors.Entitlement{
					{Kind: "usergroup", Resource: "oncall"},
					{Kind: "channel", Resource: "general"},
				},
				ManyMembers:        250,
				SuspendKeepsGrants: false,
			}
		})
	})
}

var (
	alice = connectors.Person{Worker: "w-1", Email: "Alice@PiedPiper.com", UserName: "alice"}
	bob   = connectors.Person{Worker: "w-2", Email: "bob@piedpiper.com", UserName: "bob"}
)

func act(k connectors.ActionKind, p connectors.Person, e connectors.Entitlement) connectors.Action {
	return connectors.Action{Kind: k, App: "github", Person: p, Entitlement: e, Reason: "test"}
}

func ent(s string) connectors.Entitlement {
	e, err := connectors.ParseEntitlement(s)
	if err != nil {
		panic(err)
	}
	return e
}

func mustApply(t *testing.T, a *App, x connectors.Action) {
	t.Helper()
	if err := a.Apply(t.Context(), x); err != nil {
		t.Fatalf("Apply(%s): %v", x, err)
	}
}

func mustSnapshot(t *testing.T, a *App) *connectors.State {
	t.Helper()
	st, err := a.Snapshot(t.Context())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return st
}

func mustChanges(t *testing.T, a *App) []Change {
	t.Helper()
	cs, err := a.Changes(t.Context())
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	return cs
}

func stateJSON(t *testing.T, st *connectors.State) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStateSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "roster.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := openApp(t, db, "github", githubSettings)
	for _, x := range []connectors.Action{
		act(connectors.CreateAccount, alice, ent("account#admin")),
		act(connectors.Grant, alice, ent("team/backend#maintainer")),
		act(connectors.Grant, alice, ent("repo/roster")),
		act(connectors.CreateAccount, bob, connectors.Entitlement{}),
		act(connectors.SuspendAccount, bob, connectors.Entitlement{}),
	} {
		mustApply(t, a, x)
	}
	before := stateJSON(t, mustSnapshot(t, a))
	changesBefore := len(mustChanges(t, a))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	b := openApp(t, openDB(t, path), "github", githubSettings)
	if after := stateJSON(t, mustSnapshot(t, b)); after != before {
		t.Errorf("state after reopening:\n%s\nwant\n%s", after, before)
	}
	want := `{"app":"github","accounts":[` +
		`{"id":"m-000001","worker":"w-1","email":"Alice@PiedPiper.com","userName":"alice","role":"admin","entitlements":[{"kind":"repo","resource":"roster"},{"kind":"team","resource":"backend","role":"maintainer"}]},` +
		`{"id":"m-000002","worker":"w-2","email":"bob@piedpiper.com","userName":"bob","suspended":true,"role":"member"}]}`
	if before != want {
		t.Errorf("state:\n%s\nwant\n%s", before, want)
	}
	if n := len(mustChanges(t, b)); n != changesBefore || n != 5 {
		t.Errorf("after reopening %d changes, before %d, want 5", n, changesBefore)
	}
	// The next account id continues the sequence.
	mustApply(t, b, act(connectors.CreateAccount, connectors.Person{Worker: "w-3"}, connectors.Entitlement{}))
	st := mustSnapshot(t, b)
	if got := st.Accounts[len(st.Accounts)-1].ID; got != "m-000003" {
		t.Errorf("third account id = %q, want m-000003", got)
	}
}

func TestInstancesAreIsolated(t *testing.T) {
	db := tempDB(t)
	gh := openApp(t, db, "github", githubSettings)
	sl := openApp(t, db, "slack", slackSettings)
	mustApply(t, gh, act(connectors.CreateAccount, alice, connectors.Entitlement{}))
	if st := mustSnapshot(t, sl); len(st.Accounts) != 0 || st.App != "slack" {
		t.Errorf("slack sees %+v after a github create", st)
	}
	if err := sl.Apply(t.Context(), act(connectors.Grant, alice, ent("channel/general"))); connectors.KindOf(err) != connectors.NotFound {
		t.Errorf("slack grant to a github-only person: %v, want NotFound", err)
	}
	if cs := mustChanges(t, sl); len(cs) != 0 {
		t.Errorf("slack change log: %+v, want empty", cs)
	}
}

// TestChangesLog checks one change record per effective change and none
// for no-ops, step by step.
func TestChangesLog(t *testing.T) {
	type step struct {
		x    connectors.Action
		want string // the logged change as "kind account entitlement", or "" for none
	}
	withAcct := func(x connectors.Action, id connectors.AccountID) connectors.Action { x.Account = id; return x }
	tests := []struct {
		name     string
		settings string
		steps    []step
	}{
		{"github", githubSettings, []step{
			{act(connectors.CreateAccount, alice, connectors.Entitlement{}), "create_account m-000001 account#member"},
			{act(connectors.CreateAccount, alice, connectors.Entitlement{}), ""},
			{act(connectors.CreateAccount, alice, ent("account#admin")), ""},
			{act(connectors.Grant, alice, ent("account#admin")), "grant m-000001 account#admin"},
			{act(connectors.Grant, alice, ent("account#admin")), ""},
			{act(connectors.Grant, alice, ent("team/backend")), "grant m-000001 team/backend#member"},
			{act(connectors.Grant, alice, ent("team/backend#member")), ""},
			{withAcct(act(connectors.Grant, alice, ent("team/backend")), "m-000001"), ""},
			{act(connectors.Grant, alice, ent("team/backend#maintainer")), "grant m-000001 team/backend#maintainer"},
			{act(connectors.Grant, alice, ent("repo/roster")), "grant m-000001 repo/roster"},
			{act(connectors.Revoke, alice, ent("repo/roster")), "revoke m-000001 repo/roster"},
			{act(connectors.Revoke, alice, ent("repo/roster")), ""},
			{act(connectors.Revoke, alice, ent("repo/never-held")), ""},
			{act(connectors.Revoke, bob, ent("repo/roster")), ""}, // bob has no account
			{act(connectors.SuspendAccount, alice, connectors.Entitlement{}), "suspend_account m-000001"},
			{act(connectors.SuspendAccount, alice, connectors.Entitlement{}), ""},
			{act(connectors.Grant, alice, ent("repo/docs")), "grant m-000001 repo/docs"}, // allowed while suspended
			{act(connectors.RestoreAccount, alice, connectors.Entitlement{}), "restore_account m-000001"},
			{act(connectors.RestoreAccount, alice, connectors.Entitlement{}), ""},
			// Revoke by key, whatever role is named.
			{act(connectors.Revoke, alice, ent("team/backend#member")), "revoke m-000001 team/backend#maintainer"},
			{act(connectors.DeleteAccount, alice, connectors.Entitlement{}), "delete_account m-000001"},
			{act(connectors.DeleteAccount, alice, connectors.Entitlement{}), ""},
			{withAcct(act(connectors.DeleteAccount, alice, connectors.Entitlement{}), "m-000001"), ""},
			{act(connectors.CreateAccount, alice, connectors.Entitlement{}), "create_account m-000002 account#member"},
		}},
		{"slack", slackSettings, []step{
			{act(connectors.CreateAccount, bob, connectors.Entitlement{}), "create_account m-000001 account"},
			{act(connectors.Grant, bob, ent("channel/general")), "grant m-000001 channel/general"},
			{act(connectors.SuspendAccount, bob, connectors.Entitlement{}), "suspend_account m-000001"},
			{act(connectors.SuspendAccount, bob, connectors.Entitlement{}), ""},
			// A grant made while suspended is dropped by the next suspend.
			{act(connectors.Grant, bob, ent("usergroup/oncall")), "grant m-000001 usergroup/oncall"},
			{act(connectors.SuspendAccount, bob, connectors.Entitlement{}), "suspend_account m-000001"},
			{act(connectors.SuspendAccount, bob, connectors.Entitlement{}), ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := openApp(t, tempDB(t), tt.name, tt.settings)
			var want []string
			for i, s := range tt.steps {
				mustApply(t, a, s.x)
				if s.want != "" {
					want = append(want, s.want)
				}
				cs := mustChanges(t, a)
				if len(cs) != len(want) {
					t.Fatalf("step %d (%s): %d changes logged, want %d", i, s.x, len(cs), len(want))
				}
				for j, c := range cs {
					got := strings.TrimSpace(fmt.Sprintf("%s %s %s", c.Kind, c.Account, c.Entitlement))
					if got != want[j] || c.Seq != uint64(j+1) {
						t.Fatalf("step %d (%s): change %d = %d %q, want %d %q", i, s.x, j, c.Seq, got, j+1, want[j])
					}
					if c.Time.Location() != time.UTC || c.Time.IsZero() {
						t.Errorf("change %d time %v is not UTC", j, c.Time)
					}
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	a := openApp(t, tempDB(t), "github", githubSettings)
	// An account created without a worker id is found by e-mail, in any case.
	mustApply(t, a, act(connectors.CreateAccount, connectors.Person{Email: "Gilfoyle@PiedPiper.com"}, connectors.Entitlement{}))
	gilfoyle := connectors.Person{Worker: "w-9", Email: "gilfoyle@piedpiper.com"}
	mustApply(t, a, act(connectors.Grant, gilfoyle, ent("repo/roster")))
	// An account of another worker is never matched by e-mail alone.
	mustApply(t, a, act(connectors.CreateAccount, alice, connectors.Entitlement{}))
	impostor := connectors.Person{Worker: "w-666", Email: alice.Email}
	if err := a.Apply(t.Context(), act(connectors.Grant, impostor, ent("repo/roster"))); connectors.KindOf(err) != connectors.NotFound {
		t.Errorf("grant to another worker with alice's e-mail: %v, want NotFound", err)
	}
	// A stale account id falls back to the worker id.
	x := act(connectors.Grant, alice, ent("repo/docs"))
	x.Account = "m-999999"
	mustApply(t, a, x)

	st := mustSnapshot(t, a)
	got := fmt.Sprint(st.Accounts[0].Entitlements, st.Accounts[1].Entitlements)
	if want := "[repo/roster] [repo/docs]"; got != want {
		t.Errorf("entitlements %s, want %s", got, want)
	}
}

func TestInvalidActions(t *testing.T) {
	a := openApp(t, tempDB(t), "github", githubSettings)
	mustApply(t, a, act(connectors.CreateAccount, alice, connectors.Entitlement{}))
	tests := []struct {
		x    connectors.Action
		kind connectors.ErrorKind
		msg  string
	}{
		{act(connectors.Grant, alice, ent("group/eng")), connectors.Invalid, `kind "group" is not offered by this instance (offered: team, repo)`},
		{act(connectors.Grant, alice, ent("team/backend#owner")), connectors.Invalid, `kind "team" has no role "owner" (roles: member, maintainer)`},
		{act(connectors.Grant, alice, ent("repo/roster#admin")), connectors.Invalid, `kind "repo" takes no role`},
		{act(connectors.Grant, alice, connectors.Entitlement{Kind: "team"}), connectors.Invalid, "names no resource"},
		{act(connectors.Grant, alice, ent("account#owner")), connectors.Invalid, `no account role "owner"`},
		{act(connectors.CreateAccount, bob, ent("account#owner")), connectors.Invalid, `no account role "owner"`},
		{act(connectors.CreateAccount, bob, ent("team/backend")), connectors.Invalid, "only an account role"},
		{act(connectors.Revoke, alice, connectors.Account), connectors.Invalid, "use delete_account"},
		{act(connectors.Revoke, alice, ent("group/eng")), connectors.Invalid, "not offered"},
		{act("rename_account", alice, connectors.Entitlement{}), connectors.Invalid, "unknown action kind"},
		{act(connectors.TransferData, alice, connectors.Entitlement{}), connectors.Invalid, "does not transfer data"},
		{act(connectors.CreateAccount, connectors.Person{UserName: "x"}, connectors.Entitlement{}), connectors.Invalid, "nothing"},
		{act(connectors.Grant, bob, ent("repo/roster")), connectors.NotFound, `no account for worker "w-2"`},
		{act(connectors.SuspendAccount, bob, connectors.Entitlement{}), connectors.NotFound, "no account"},
		{act(connectors.RestoreAccount, bob, connectors.Entitlement{}), connectors.NotFound, "no account"},
	}
	before := stateJSON(t, mustSnapshot(t, a))
	for _, tt := range tests {
		err := a.Apply(t.Context(), tt.x)
		if err == nil {
			t.Errorf("Apply(%s): nil error, want %s", tt.x, tt.kind)
			continue
		}
		if k := connectors.KindOf(err); k != tt.kind {
			t.Errorf("Apply(%s): kind %s (%v), want %s", tt.x, k, err, tt.kind)
		}
		if tt.msg != "nothing" && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Apply(%s): error %q does not say %q", tt.x, err, tt.msg)
		}
		if !strings.Contains(err.Error(), "memory github:") {
			t.Errorf("Apply(%s): error %q does not name the instance", tt.x, err)
		}
	}
	if after := stateJSON(t, mustSnapshot(t, a)); after != before {
		t.Errorf("rejected actions changed the state:\n%s\nwas\n%s", after, before)
	}
	if n := len(mustChanges(t, a)); n != 1 {
		t.Errorf("%d changes logged, want 1 (the create)", n)
	}
}

func TestBadSettings(t *testing.T) {
	tests := []struct {
		name, settings, want string
	}{
		{"uppercase kind", `{"kinds":[{"name":"Team"}]}`, `kinds[0]: name "Team" must match [a-z][a-z0-9_-]*`},
		{"empty kind", `{"kinds":[{"name":""}]}`, `kinds[0]: name "" must match`},
		{"duplicate kind", `{"kinds":[{"name":"team"},{"name":"repo"},{"name":"team"}]}`, `kinds[2]: kind "team" is already declared by kinds[0]`},
		{"duplicate role", `{"kinds":[{"name":"team","roles":["member","member"]}]}`, `kinds[0] (team): role "member" listed twice`},
		{"empty role", `{"kinds":[{"name":"team","roles":[""]}]}`, `kinds[0] (team): empty role`},
		{"failure rate", `{"failure_rate":1.5}`, "failure_rate: 1.5 is not a probability between 0 and 1"},
		{"lost rate", `{"lost_response_rate":-0.1}`, "lost_response_rate: -0.1 is not a probability"},
		{"latency", `{"latency":"fast"}`, `duration "fast": want a number with a unit`},
		{"negative latency", `{"latency":"-1s"}`, "latency: -1s is negative"},
		{"unknown key", `{"failure_rat":0.1}`, `unknown field "failure_rat"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.Context(), connectors.Env{Name: "github", Settings: jsonSettings(tt.settings), DB: tempDB(t)})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "settings: ") {
				t.Errorf("Open with %s: error %v, want one starting \"settings: \" and saying %q", tt.settings, err, tt.want)
			}
		})
	}
	t.Run("nil db", func(t *testing.T) {
		_, err := Open(t.Context(), connectors.Env{Name: "github", Settings: jsonSettings(`{}`)})
		if err == nil || !strings.Contains(err.Error(), "Env.DB is nil") {
			t.Errorf("Open without a DB: %v", err)
		}
	})
	t.Run("no settings", func(t *testing.T) {
		c, err := Open(t.Context(), connectors.Env{Name: "zendesk", DB: tempDB(t)})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Kinds()) != 0 {
			t.Errorf("Kinds() = %v, want none", c.Kinds())
		}
	})
}

// TestYAMLSettings checks that the documented roster.yaml block decodes
// strictly with the YAML library the config package uses.
func TestYAMLSettings(t *testing.T) {
	src := `
kinds:
  - {name: account, roles: [member, admin]}
  - {name: team, roles: [member, maintainer], doc: "GitHub team"}
  - {name: repo}
latency: 50ms
failure_rate: 0.2
lost_response_rate: 0.1
seed: 1
suspend_drops_grants: true
`
	var cfg Config
	if err := yaml.NewDecoder(bytes.NewReader([]byte(src)), yaml.Strict(), yaml.DisallowUnknownField()).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v", cfg)
	want := "{Kinds:[{Name:account Roles:[member admin] Doc:} {Name:team Roles:[member maintainer] Doc:GitHub team} {Name:repo Roles:[] Doc:}] " +
		"Latency:50000000 FailureRate:0.2 LostResponseRate:0.1 Seed:1 SuspendDropsGrants:true}"
	if got != want {
		t.Errorf("decoded\n%s\nwant\n%s", got, want)
	}
}

func TestFailureRateOne(t *testing.T) {
	db := tempDB(t)
	flaky := openApp(t, db, "github", `{"kinds":[{"name":"repo"}],"failure_rate":1}`)
	for _, x := range []connectors.Action{
		act(connectors.CreateAccount, alice, connectors.Entitlement{}),
		act(connectors.DeleteAccount, alice, connectors.Entitlement{}),
	} {
		err := flaky.Apply(t.Context(), x)
		if connectors.KindOf(err) != connectors.Transient || !strings.Contains(err.Error(), "injected failure before the change") {
			t.Errorf("Apply(%s) = %v, want an injected Transient error", x, err)
		}
	}
	if _, err := flaky.Snapshot(t.Context()); connectors.KindOf(err) != connectors.Transient {
		t.Errorf("Snapshot = %v, want Transient", err)
	}
	steady := openApp(t, db, "github", `{"kinds":[{"name":"repo"}]}`)
	if st := mustSnapshot(t, steady); len(st.Accounts) != 0 {
		t.Errorf("failed applies changed the state: %+v", st.Accounts)
	}
	if cs := mustChanges(t, steady); len(cs) != 0 {
		t.Errorf("failed applies logged changes: %+v", cs)
	}
}

func TestLostResponse(t *testing.T) {
	db := tempDB(t)
	lossy := openApp(t, db, "github", `{"kinds":[{"name":"repo"}],"lost_response_rate":1}`)
	steady := openApp(t, db, "github", `{"kinds":[{"name":"repo"}]}`)
	create := act(connectors.CreateAccount, alice, connectors.Entitlement{})
	grant := act(connectors.Grant, alice, ent("repo/roster"))
	for _, x := range []connectors.Action{create, grant} {
		for try := range 2 {
			err := lossy.Apply(t.Context(), x)
			if connectors.KindOf(err) != connectors.Transient || !strings.Contains(err.Error(), "lost response after the change") {
				t.Errorf("Apply(%s) try %d = %v, want a Transient lost response", x, try, err)
			}
		}
		// The executor's retry, once the app answers again, succeeds.
		mustApply(t, steady, x)
	}
	st := mustSnapshot(t, steady)
	if len(st.Accounts) != 1 || fmt.Sprint(st.Accounts[0].Entitlements) != "[repo/roster]" {
		t.Errorf("state %+v, want alice with repo/roster", st.Accounts)
	}
	cs := mustChanges(t, steady)
	if len(cs) != 2 || cs[0].Kind != connectors.CreateAccount || cs[1].Kind != connectors.Grant {
		t.Errorf("changes %+v, want one create and one grant", cs)
	}
}

func TestSeededFailuresRepeat(t *testing.T) {
	run := func() string {
		a := openApp(t, tempDB(t), "github", `{"kinds":[{"name":"repo"}],"failure_rate":0.5,"seed":7}`)
		var b strings.Builder
		for range 40 {
			if _, err := a.Snapshot(t.Context()); err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	first, second := run(), run()
	if first != second {
		t.Errorf("same seed, different failures:\n%s\n%s", first, second)
	}
	if !strings.Contains(first, ".") || !strings.Contains(first, "x") {
		t.Errorf("failure_rate 0.5 over 40 calls gave %s", first)
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	db := tempDB(t)
	slow := openApp(t, db, "github", `{"kinds":[{"name":"repo"}],"latency":"1h"}`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 2)
	go func() { done <- slow.Apply(ctx, act(connectors.CreateAccount, alice, connectors.Entitlement{})) }()
	go func() { _, err := slow.Snapshot(ctx); done <- err }()
	cancel()
	for range 2 {
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("call with a cancelled context = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a call did not return after its context was cancelled")
		}
	}
	// Like a remote call whose answer is lost, the cancelled create may
	// or may not have happened; retrying it leaves exactly one account.
	if st := mustSnapshot(t, openApp(t, db, "github", `{"kinds":[{"name":"repo"}]}`)); len(st.Accounts) > 1 {
		t.Errorf("cancelled create made %d accounts: %+v", len(st.Accounts), st.Accounts)
	}
	quick := openApp(t, db, "github", `{"kinds":[{"name":"repo"}],"latency":"1ms"}`)
	mustApply(t, quick, act(connectors.CreateAccount, alice, connectors.Entitlement{}))
	if st := mustSnapshot(t, quick); len(st.Accounts) != 1 {
		t.Errorf("after the retry: %d accounts, want 1", len(st.Accounts))
	}
}

// TestConcurrentApplies races applies on one account: each effective
// change is logged once and none is lost.
func TestConcurrentApplies(t *testing.T) {
	a := openApp(t, tempDB(t), "github", githubSettings)
	mustApply(t, a, act(connectors.CreateAccount, alice, connectors.Entitlement{}))
	const repos, copies = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, repos*copies)
	for i := range repos {
		for range copies {
			wg.Go(func() {
				errs <- a.Apply(t.Context(), act(connectors.Grant, alice, ent(fmt.Sprintf("repo/r%d", i))))
			})
		}
	}
	wg.Go(func() {
		if _, err := a.Snapshot(t.Context()); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := mustSnapshot(t, a)
	if n := len(st.Accounts[0].Entitlements); n != repos {
		t.Errorf("alice holds %d repos, want %d: %v", n, repos, st.Accounts[0].Entitlements)
	}
	if n := len(mustChanges(t, a)); n != 1+repos {
		t.Errorf("%d changes logged, want %d", n, 1+repos)
	}
}

func TestKindsIsACopy(t *testing.T) {
	a := openApp(t, tempDB(t), "github", githubSettings)
	ks := a.Kinds()
	ks[1].Roles[0] = "owner"
	ks[0].Name = "changed"
	if got := a.Kinds(); got[1].Roles[0] != "member" || got[0].Name != "account" {
		t.Errorf("Kinds() shares memory with the instance: %v", got)
	}
}

func benchApp(b *testing.B, accounts int) *App {
	b.Helper()
	db := tempDB(b)
	db.NoSync = true // measure the app, not the disk
	a := openApp(b, db, "github", githubSettings)
	for i := range accounts {
		p := connectors.Person{Worker: connectors.WorkerID(fmt.Sprintf("w-%d", i)), Email: fmt.Sprintf("p%d@example.com", i)}
		if err := a.Apply(b.Context(), act(connectors.CreateAccount, p, connectors.Entitlement{})); err != nil {
			b.Fatal(err)
		}
	}
	return a
}

// BenchmarkApplyGrant grants to the last of 1,000 accounts, looked up by
// worker id (a scan), alternating roles so every apply is a change.
func BenchmarkApplyGrant(b *testing.B) {
	a := benchApp(b, 1000)
	p := connectors.Person{Worker: "w-999"}
	roles := []string{"member", "maintainer"}
	i := 0
	for b.Loop() {
		e := connectors.Entitlement{Kind: "team", Resource: "backend", Role: roles[i%2]}
		if err := a.Apply(b.Context(), act(connectors.Grant, p, e)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSnapshot(b *testing.B) {
	a := benchApp(b, 1000)
	for b.Loop() {
		if _, err := a.Snapshot(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
