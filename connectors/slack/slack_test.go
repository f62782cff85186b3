package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/connectortest"
	"github.com/rosterhq/roster/connectors/slack/slackfake"
)

// jsonSettings is a connectors.Settings holding a JSON settings block.
type jsonSettings string

func (s jsonSettings) Decode(v any) error {
	dec := json.NewDecoder(strings.NewReader(string(s)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// newFake starts a fake workspace with the user groups and channels the
// tests use.
func newFake(t testing.TB, opts slackfake.Options) *slackfake.Server {
	t.Helper()
	f := slackfake.New(opts)
	t.Cleanup(f.Close)
	for _, g := range []string{"oncall", "eng-team"} {
		f.AddUsergroup(g)
	}
	for _, c := range []string{"eng", "random"} {
		f.AddChannel(c)
	}
	return f
}

// connect builds a connector on the fake; edit may change the settings.
func connect(t testing.TB, f *slackfake.Server, edit func(*Config)) *Connector {
	t.Helper()
	cfg := DefaultConfig()
	cfg.APIURL, cfg.SCIMURL, cfg.Token = f.APIURL(), f.SCIMURL(), "env:UNUSED"
	cfg.Channels = []string{"eng", "random"}
	cfg.Timeout = Duration(5 * time.Second)
	if edit != nil {
		edit(&cfg)
	}
	c, err := New("slack", cfg, Options{Token: f.Token, SCIMToken: f.SCIMToken, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, func(t *testing.T) connectortest.Target {
		f := newFake(t, slackfake.Options{PageLimit: 50})
		if strings.HasSuffix(t.Name(), "/Pagination") {
			t.Cleanup(func() {
				next := f.Calls().NextPages
				if next["SCIM GET /Users"] == 0 || next["conversations.members"] == 0 {
					t.Errorf("the pagination test read no second page: %v", next)
				}
			})
		}
		return connectortest.Target{
			Connector:   connect(t, f, nil),
			Grants:      []connectors.Entitlement{{Kind: KindChannel, Resource: "eng"}, {Kind: KindUsergroup, Resource: "oncall"}},
			ManyMembers: 120,
		}
	})
}

func person(i int) connectors.Person { return connectortest.DefaultPerson(i) }

func act(k connectors.ActionKind, p connectors.Person, acct connectors.AccountID, e connectors.Entitlement) connectors.Action {
	return connectors.Action{Kind: k, App: "slack", Person: p, Account: acct, Entitlement: e, Reason: "test"}
}

func ent(s string) connectors.Entitlement {
	e, err := connectors.ParseEntitlement(s)
	if err != nil {
		panic(err)
	}
	return e
}

func mustApply(t testing.TB, c *Connector, a connectors.Action) {
	t.Helper()
	if err := c.Apply(context.Background(), a); err != nil {
		t.Fatalf("Apply(%s): %v (kind %s)", a, err, connectors.KindOf(err))
	}
}

func mustSnapshot(t testing.TB, c *Connector) *connectors.State {
	t.Helper()
	st, err := c.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v (kind %s)", err, connectors.KindOf(err))
	}
	return st
}

func accountOf(st *connectors.State, w connectors.WorkerID) (connectors.AccountState, bool) {
	for _, a := range st.Accounts {
		if a.Worker == w {
			return a, true
		}
	}
	return connectors.AccountState{}, false
}

func writeCount(f *slackfake.Server, op string) int {
	n := 0
	for _, w := range f.Writes() {
		if w.Op == op {
			n++
		}
	}
	return n
}

// TestLastUsergroupMember: Slack refuses an empty member list, so removing
// the last member disables the group; a disabled group has no members in
// the snapshot, and the next grant enables it with only the new member.
func TestLastUsergroupMember(t *testing.T) {
	for _, ro := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisabledGroupsReadOnly=%v", ro), func(t *testing.T) { testLastUsergroupMember(t, ro) })
	}
}

func testLastUsergroupMember(t *testing.T, readOnly bool) {
	f := newFake(t, slackfake.Options{DisabledGroupsReadOnly: readOnly})
	c := connect(t, f, nil)
	p, q := person(1), person(2)
	oncall := ent("usergroup/oncall")
	mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	mustApply(t, c, act(connectors.CreateAccount, q, "", connectors.Entitlement{}))
	mustApply(t, c, act(connectors.Grant, p, "", oncall))
	pu, _ := f.UserByEmail(p.Email)
	qu, _ := f.UserByEmail(q.Email)

	mustApply(t, c, act(connectors.Revoke, p, "", oncall))
	if !f.UsergroupDisabled("oncall") {
		t.Fatal("removing the last member did not disable the group")
	}
	for _, w := range f.Writes() {
		if w.Op == "usergroups.users.update" && w.User == "" {
			t.Errorf("an empty member list was sent: %+v", w)
		}
	}
	if a, _ := accountOf(mustSnapshot(t, c), p.Worker); len(a.Entitlements) != 0 {
		t.Errorf("after removing the last member the snapshot shows %v", a.Entitlements)
	}
	mustApply(t, c, act(connectors.Revoke, p, "", oncall)) // already removed: nothing to do
	if n := writeCount(f, "usergroups.disable"); n != 1 {
		t.Errorf("usergroups.disable written %d times, want 1", n)
	}

	// The next grant replaces the stale list and enables the group.
	mustApply(t, c, act(connectors.Grant, q, "", oncall))
	if f.UsergroupDisabled("oncall") {
		t.Error("the grant left the group disabled")
	}
	if got := f.UsergroupMembers("oncall"); !slices.Equal(got, []string{qu.ID}) {
		t.Errorf("members = %v, want only %s (not the removed %s)", got, qu.ID, pu.ID)
	}
	st := mustSnapshot(t, c)
	if a, _ := accountOf(st, q.Worker); !slices.Equal(a.Entitlements, []connectors.Entitlement{oncall}) {
		t.Errorf("q holds %v", a.Entitlements)
	}
	if a, _ := accountOf(st, p.Worker); len(a.Entitlements) != 0 {
		t.Errorf("p holds %v", a.Entitlements)
	}

	// A group disabled by hand after the snapshot: the grant still ends
	// with the group enabled and only the new member.
	f.SetUsergroupDisabled("oncall", true)
	f.SetUsergroupMembers("oncall", qu.ID)
	mustApply(t, c, act(connectors.Grant, p, "", oncall))
	if f.UsergroupDisabled("oncall") || !slices.Equal(f.UsergroupMembers("oncall"), []string{pu.ID}) {
		t.Errorf("after granting a group disabled by hand: disabled=%v members=%v", f.UsergroupDisabled("oncall"), f.UsergroupMembers("oncall"))
	}
}

// TestConcurrentGroupGrants: usergroups.users.update replaces the list, so
// concurrent grants to one group must not overwrite each other.
func TestConcurrentGroupGrants(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, func(c *Config) { c.MaxConcurrentRequests = 8 })
	const n = 12
	for i := range n {
		mustApply(t, c, act(connectors.CreateAccount, person(i), "", connectors.Entitlement{}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- c.Apply(t.Context(), act(connectors.Grant, person(i), "", ent("usergroup/eng-team"))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.UsergroupMembers("eng-team"); len(got) != n {
		t.Errorf("eng-team has %d members after %d concurrent grants: %v", len(got), n, got)
	}
}

// TestDeleteAndRehire: DeleteAccount deactivates and releases the user
// (externalId "released:<worker>"); the user disappears from the snapshot
// but stays in Slack; creating the account again for the same worker takes
// the same user back, and another worker given the address is refused.
func TestDeleteAndRehire(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, nil)
	p := person(1)
	mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	mustApply(t, c, act(connectors.Grant, p, "", ent("channel/eng")))
	before, _ := f.UserByEmail(p.Email)
	mustApply(t, c, act(connectors.DeleteAccount, p, connectors.AccountID(before.ID), connectors.Entitlement{}))
	after, _ := f.UserByEmail(p.Email)
	if after.Active || after.ExternalID != "released:"+string(p.Worker) {
		t.Errorf("after delete the Slack user is active=%v externalId=%q, want deactivated and released", after.Active, after.ExternalID)
	}
	// A new hire given the leaver's address does not get their account.
	other := person(2)
	other.Email = p.Email
	if err := c.Apply(t.Context(), act(connectors.CreateAccount, other, "", connectors.Entitlement{})); connectors.KindOf(err) != connectors.Conflict || !strings.Contains(err.Error(), "who left") {
		t.Errorf("another worker creating an account for the released address: %v, want a Conflict saying whose it was", err)
	}
	if u, _ := f.UserByEmail(p.Email); u.Active || u.ExternalID != "released:"+string(p.Worker) {
		t.Errorf("the released user changed: %+v", u)
	}
	if slices.Contains(f.ChannelMembers("eng"), before.ID) {
		t.Error("the deleted user is still in #eng")
	}
	if _, ok := accountOf(mustSnapshot(t, c), p.Worker); ok {
		t.Error("the snapshot still shows the deleted account")
	}
	// Operations on the released account.
	if err := c.Apply(t.Context(), act(connectors.Grant, p, "", ent("channel/eng"))); connectors.KindOf(err) != connectors.NotFound {
		t.Errorf("grant to a released account: %v, want NotFound", err)
	}
	mustApply(t, c, act(connectors.SuspendAccount, p, "", connectors.Entitlement{}))

	mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	again, _ := f.UserByEmail(p.Email)
	if again.ID != before.ID || !again.Active || again.ExternalID != string(p.Worker) {
		t.Errorf("rehire: %+v, want user %s active and linked to %s", again, before.ID, p.Worker)
	}
	if n := writeCount(f, "scim.create"); n != 1 {
		t.Errorf("%d SCIM creates, want 1", n)
	}
	a, ok := accountOf(mustSnapshot(t, c), p.Worker)
	if !ok || a.Suspended || len(a.Entitlements) != 0 {
		t.Errorf("after rehire the snapshot shows %+v (found %v), want an active account holding nothing", a, ok)
	}
}

// TestExistingUsers: accounts made outside Roster are found by e-mail;
// one linked to another worker is never taken over.
func TestExistingUsers(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, nil)
	p, q := person(1), person(2)
	pid := f.AddUser(slackfake.User{UserName: "handmade", Email: strings.ToUpper(p.Email), Active: true})
	f.AddUser(slackfake.User{UserName: "other", Email: q.Email, ExternalID: "w-someone-else", Active: true})

	mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	u, _ := f.UserByEmail(p.Email)
	if u.ID != pid || u.ExternalID != string(p.Worker) {
		t.Errorf("create over a hand-made user: %+v, want %s linked to %s", u, pid, p.Worker)
	}
	err := c.Apply(t.Context(), act(connectors.CreateAccount, q, "", connectors.Entitlement{}))
	if connectors.KindOf(err) != connectors.Conflict || !strings.Contains(err.Error(), "w-someone-else") {
		t.Errorf("create over another worker's user: %v, want a Conflict naming the worker", err)
	}
	err = c.Apply(t.Context(), act(connectors.Grant, q, "", ent("channel/eng")))
	if connectors.KindOf(err) != connectors.NotFound {
		t.Errorf("grant to a person whose e-mail belongs to another worker: %v, want NotFound", err)
	}
	mustApply(t, c, act(connectors.DeleteAccount, q, "", connectors.Entitlement{}))
	if u, _ := f.UserByEmail(q.Email); !u.Active {
		t.Error("delete for q deactivated another worker's user")
	}
}

// TestSuspendDropsAccess: deactivation removes user group and channel
// memberships in Slack, and a grant to a deactivated account is refused.
func TestSuspendDropsAccess(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, nil)
	p := person(1)
	mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	mustApply(t, c, act(connectors.Grant, p, "", ent("channel/eng")))
	mustApply(t, c, act(connectors.Grant, p, "", ent("usergroup/oncall")))
	mustApply(t, c, act(connectors.SuspendAccount, p, "", connectors.Entitlement{}))
	u, _ := f.UserByEmail(p.Email)
	if slices.Contains(f.ChannelMembers("eng"), u.ID) || slices.Contains(f.UsergroupMembers("oncall"), u.ID) {
		t.Error("the fake kept a deactivated user's memberships")
	}
	a, _ := accountOf(mustSnapshot(t, c), p.Worker)
	if !a.Suspended || len(a.Entitlements) != 0 {
		t.Errorf("suspended account: %+v", a)
	}
	if err := c.Apply(t.Context(), act(connectors.Grant, p, "", ent("channel/eng"))); connectors.KindOf(err) != connectors.Conflict {
		t.Errorf("grant to a deactivated account: %v, want Conflict", err)
	}
	mustApply(t, c, act(connectors.Revoke, p, "", ent("channel/eng"))) // nothing left to remove
}

func TestUnknownAndUnmanaged(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, func(c *Config) { c.Channels = []string{"eng", "gone"}; c.Usergroups = []string{"oncall", "nobody"} })
	p := person(1)
	mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	for _, tt := range []struct {
		e    string
		want connectors.ErrorKind
	}{
		{"channel/gone", connectors.NotFound},
		{"usergroup/nobody", connectors.NotFound},
		{"channel/random", connectors.Invalid},     // exists, not managed
		{"usergroup/eng-team", connectors.Invalid}, // exists, not managed
		{"usergroup/@oncall", connectors.Invalid},
		{"channel/eng#admin", connectors.Invalid},
		{"team/eng", connectors.Invalid},
	} {
		err := c.Apply(t.Context(), act(connectors.Grant, p, "", ent(tt.e)))
		if k := connectors.KindOf(err); k != tt.want || connectors.Retryable(err) {
			t.Errorf("grant %s: %v (kind %s), want terminal %s", tt.e, err, k, tt.want)
		}
	}
	calls := f.Calls().ByMethod["usergroups.list"] + f.Calls().ByMethod["conversations.list"]
	for range 3 {
		_ = c.Apply(t.Context(), act(connectors.Grant, p, "", ent("channel/gone")))
		_ = c.Apply(t.Context(), act(connectors.Grant, p, "", ent("usergroup/nobody")))
	}
	if again := f.Calls().ByMethod["usergroups.list"] + f.Calls().ByMethod["conversations.list"]; again != calls {
		t.Errorf("unknown names re-read the lists %d times within %s", again-calls, refreshEvery)
	}
	// An archived channel is gone for Roster.
	f.ArchiveChannel("eng")
	c2 := connect(t, f, nil)
	if err := c2.Apply(t.Context(), act(connectors.Grant, p, "", ent("channel/eng"))); connectors.KindOf(err) != connectors.NotFound {
		t.Errorf("grant on an archived channel: %v, want NotFound", err)
	}
}

func TestPrivateChannels(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	f.AddPrivateChannel("leadership")
	p := person(1)
	public := connect(t, f, func(c *Config) { c.Channels = []string{All} })
	mustApply(t, public, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	if err := public.Apply(t.Context(), act(connectors.Grant, p, "", ent("channel/leadership"))); connectors.KindOf(err) != connectors.NotFound {
		t.Errorf("private channel without private_channels: %v, want NotFound", err)
	}
	private := connect(t, f, func(c *Config) { c.Channels = []string{All}; c.PrivateChannels = true })
	mustApply(t, private, act(connectors.Grant, p, "", ent("channel/leadership")))
	a, _ := accountOf(mustSnapshot(t, private), p.Worker)
	if !slices.Equal(a.Entitlements, []connectors.Entitlement{ent("channel/leadership")}) {
		t.Errorf("holds %v, want channel/leadership", a.Entitlements)
	}
	if a, _ := accountOf(mustSnapshot(t, public), p.Worker); len(a.Entitlements) != 0 {
		t.Errorf("without private_channels the snapshot shows %v", a.Entitlements)
	}
	f.SetScopes("admin", "users:read", "usergroups:read", "usergroups:write", "channels:read", "channels:manage")
	err := private.Apply(t.Context(), act(connectors.Revoke, p, "", ent("channel/leadership")))
	if connectors.KindOf(err) != connectors.Permission || !strings.Contains(err.Error(), "groups:write") {
		t.Errorf("kick from a private channel without groups:write: %v, want Permission naming the scope", err)
	}
}

// TestWrongToken: a rejected token is a terminal Permission error and
// nothing changes; the token is in no error.
func TestWrongToken(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	good := connect(t, f, nil)
	p := person(1)
	mustApply(t, good, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	u, _ := f.UserByEmail(p.Email)
	before := len(f.Writes())

	const bad = "xoxp-wrong-secret-value"
	cfg := good.cfg
	c, err := New("slack", cfg, Options{Token: bad})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []connectors.Action{
		act(connectors.CreateAccount, person(2), "", connectors.Entitlement{}),
		act(connectors.Grant, p, connectors.AccountID(u.ID), ent("usergroup/oncall")),
		act(connectors.Grant, p, connectors.AccountID(u.ID), ent("channel/eng")),
		act(connectors.SuspendAccount, p, connectors.AccountID(u.ID), connectors.Entitlement{}),
	} {
		err := c.Apply(t.Context(), a)
		if connectors.KindOf(err) != connectors.Permission || connectors.Retryable(err) {
			t.Errorf("Apply(%s) with a wrong token: %v (kind %s), want Permission", a, err, connectors.KindOf(err))
		}
		if err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	if _, err := c.Snapshot(t.Context()); connectors.KindOf(err) != connectors.Permission {
		t.Errorf("Snapshot with a wrong token: %v, want Permission", err)
	}
	if _, err := c.Check(t.Context()); connectors.KindOf(err) != connectors.Permission {
		t.Errorf("Check with a wrong token: %v, want Permission", err)
	}
	if after := len(f.Writes()); after != before {
		t.Errorf("a wrong token changed the workspace: %v", f.Writes()[before:])
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name    string
		scopes  []string
		scimTok string
		edit    func(*Config)
		want    []string
	}{
		{name: "everything", scopes: slackfake.DefaultScopes()},
		{name: "read only", scopes: []string{"admin", "users:read", "usergroups:read", "channels:read"},
			want: []string{"scope usergroups:write", "scope channels:manage or channels:write"}},
		{name: "channels:write is enough", scopes: []string{"admin", "users:read", "usergroups:read", "usergroups:write", "channels:read", "channels:write"}},
		{name: "private channels", scopes: []string{"admin", "users:read", "usergroups:read", "usergroups:write", "channels:read", "channels:manage"},
			edit: func(c *Config) { c.PrivateChannels = true }, want: []string{"scope groups:read", "scope groups:write"}},
		{name: "no channels managed", scopes: []string{"admin", "users:read", "usergroups:read", "usergroups:write"},
			edit: func(c *Config) { c.Channels = nil }},
		{name: "no admin scope", scopes: []string{"users:read", "usergroups:read", "usergroups:write", "channels:read", "channels:manage"},
			want: []string{"SCIM API access"}},
		{name: "wrong SCIM token", scopes: slackfake.DefaultScopes(), scimTok: "xoxp-not-the-scim-token", want: []string{"SCIM API access"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, slackfake.Options{Scopes: tt.scopes})
			c := connect(t, f, tt.edit)
			if tt.scimTok != "" {
				c2, err := New("slack", c.cfg, Options{Token: f.Token, SCIMToken: tt.scimTok})
				if err != nil {
					t.Fatal(err)
				}
				c = c2
			}
			missing, err := c.Check(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(missing) != len(tt.want) {
				t.Fatalf("missing = %q, want %d entries starting %q", missing, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(missing[i], w) {
					t.Errorf("missing[%d] = %q, want it to start with %q", i, missing[i], w)
				}
				if strings.Contains(missing[i], "not-the-scim-token") {
					t.Errorf("missing[%d] shows the token: %q", i, missing[i])
				}
			}
		})
	}
}

func TestMFA(t *testing.T) {
	f := newFake(t, slackfake.Options{PageLimit: 7})
	c := connect(t, f, nil)
	var want []connectors.AccountID
	for i := range 20 {
		p := person(i)
		mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
		u, _ := f.UserByEmail(p.Email)
		switch i % 3 {
		case 0:
			f.Set2FA(u.ID, true)
		case 1:
			want = append(want, connectors.AccountID(u.ID))
		case 2:
			mustApply(t, c, act(connectors.SuspendAccount, p, "", connectors.Entitlement{})) // deactivated: left out
		}
	}
	got, err := c.AccountsWithoutMFA(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("AccountsWithoutMFA = %v, want %v", got, want)
	}
	if f.Calls().NextPages["users.list"] == 0 {
		t.Error("users.list was not paginated")
	}
	f.SetScopes("usergroups:read")
	if _, err := c.AccountsWithoutMFA(t.Context()); connectors.KindOf(err) != connectors.Permission ||
		!strings.Contains(err.Error(), "users:read") {
		t.Errorf("without users:read: %v, want a Permission error naming the scope", err)
	}
}

// executor applies a the way the engine's executor does: retrying
// retryable errors, waiting RetryAfter.
func executor(t *testing.T, c *Connector, a connectors.Action) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := c.Apply(t.Context(), a)
		if err == nil {
			return
		}
		if !connectors.Retryable(err) || attempt == 40 {
			t.Fatalf("Apply(%s) attempt %d: %v (kind %s)", a, attempt, err, connectors.KindOf(err))
		}
		time.Sleep(connectors.RetryAfter(err) + 5*time.Millisecond)
	}
}

// roundTrip drives people through create, grants, a revoke, a suspend and
// a restore, a delete; it returns what the fake must then hold.
func roundTrip(t *testing.T, c *Connector, people int) {
	t.Helper()
	for i := range people {
		p := person(i)
		executor(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
		for _, e := range []string{"channel/eng", "channel/random", "usergroup/oncall", "usergroup/eng-team"} {
			executor(t, c, act(connectors.Grant, p, "", ent(e)))
		}
		switch i % 4 {
		case 1:
			executor(t, c, act(connectors.Revoke, p, "", ent("channel/random")))
			executor(t, c, act(connectors.Revoke, p, "", ent("usergroup/eng-team")))
		case 2:
			executor(t, c, act(connectors.SuspendAccount, p, "", connectors.Entitlement{}))
			executor(t, c, act(connectors.RestoreAccount, p, "", connectors.Entitlement{}))
			executor(t, c, act(connectors.Grant, p, "", ent("channel/eng")))
		case 3:
			executor(t, c, act(connectors.DeleteAccount, p, "", connectors.Entitlement{}))
		}
	}
}

// checkRoundTrip checks the fake's state and write log after roundTrip.
func checkRoundTrip(t *testing.T, f *slackfake.Server, c *Connector, people int) {
	t.Helper()
	creates := map[string]int{}
	invites := map[string]int{}
	for _, w := range f.Writes() {
		switch w.Op {
		case "scim.create":
			creates[w.Detail]++
		case "conversations.invite":
			invites[w.Target+" "+w.User]++
		}
	}
	for i := range people {
		p := person(i)
		if creates[p.Email] != 1 {
			t.Errorf("%s created %d times", p.Email, creates[p.Email])
		}
		u, ok := f.UserByEmail(p.Email)
		if !ok {
			t.Fatalf("no Slack user for %s", p.Email)
		}
		want := map[string]bool{"channel/eng": true, "channel/random": true, "usergroup/oncall": true, "usergroup/eng-team": true}
		switch i % 4 {
		case 1:
			delete(want, "channel/random")
			delete(want, "usergroup/eng-team")
		case 2:
			want = map[string]bool{"channel/eng": true}
		case 3:
			want = map[string]bool{}
			if u.Active || u.ExternalID != "released:"+string(p.Worker) {
				t.Errorf("%s: deleted account is active=%v externalId=%q, want deactivated and released", p.Email, u.Active, u.ExternalID)
			}
		}
		got := map[string]bool{}
		for _, ch := range []string{"eng", "random"} {
			if slices.Contains(f.ChannelMembers(ch), u.ID) {
				got["channel/"+ch] = true
			}
		}
		for _, g := range []string{"oncall", "eng-team"} {
			if !f.UsergroupDisabled(g) && slices.Contains(f.UsergroupMembers(g), u.ID) {
				got["usergroup/"+g] = true
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s (%s) holds %v, want %v", p.Email, u.ID, got, want)
		}
		if i%4 != 2 { // person 2 is invited to #eng twice: before the suspension and after
			for _, ch := range []string{"eng", "random"} {
				if n := invites[f.ChannelID(ch)+" "+u.ID]; n > 1 {
					t.Errorf("%s invited to #%s %d times", p.Email, ch, n)
				}
			}
		}
	}
	st, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatalf("Snapshot under faults: %v", err)
	}
	for i := range people {
		a, ok := accountOf(st, person(i).Worker)
		if ok == (i%4 == 3) {
			t.Errorf("person %d: account in snapshot = %v", i, ok)
		}
		if ok && a.Suspended {
			t.Errorf("person %d: suspended in the snapshot", i)
		}
	}
}

// TestFaults: with 20% of requests answered 429 or 5xx, the round trip
// ends in the right state with nothing duplicated.
func TestFaults(t *testing.T) {
	const people = 8
	f := newFake(t, slackfake.Options{PageLimit: 3})
	c := connect(t, f, nil)
	f.SetFaults(slackfake.Faults{Rate429: 0.1, Rate5xx: 0.1, Seed: 7})
	roundTrip(t, c, people)
	checkRoundTrip(t, f, c, people)
	calls := f.Calls()
	if calls.Throttled == 0 || calls.Failed == 0 {
		t.Errorf("no faults injected: %+v", calls)
	}
	t.Logf("%d calls, %d answered 429, %d answered 5xx", calls.Total, calls.Throttled, calls.Failed)
}

// TestLostResponses: requests that are carried out but whose answers are
// lost (the client times out) are retried without duplicates.
func TestLostResponses(t *testing.T) {
	const people = 4
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, func(c *Config) { c.Timeout = Duration(300 * time.Millisecond) })
	f.SetFaults(slackfake.Faults{RateHang: 0.08, Seed: 3})
	roundTrip(t, c, people)
	f.SetFaults(slackfake.Faults{})
	checkRoundTrip(t, f, c, people)
	hung := 0
	for _, r := range f.Requests() {
		if r.Fault == "hang" {
			hung++
		}
	}
	if hung == 0 {
		t.Error("no request hung")
	}
}

// TestRetryAfterWaited: a 429 with Retry-After: 1 is waited out before the
// retry, measured at the fake.
func TestRetryAfterWaited(t *testing.T) {
	for _, tt := range []struct {
		name string
		a    func(c *Connector, id string) error
	}{
		{"SCIM", func(c *Connector, _ string) error {
			return c.Apply(context.Background(), act(connectors.Grant, person(1), "", ent("channel/eng")))
		}},
		{"Web API", func(c *Connector, id string) error {
			return c.Apply(context.Background(), act(connectors.Grant, person(1), connectors.AccountID(id), ent("channel/random")))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, slackfake.Options{})
			c := connect(t, f, nil)
			mustApply(t, c, act(connectors.CreateAccount, person(1), "", connectors.Entitlement{}))
			mustSnapshot(t, c) // warm the channel cache
			u, _ := f.UserByEmail(person(1).Email)
			f.ResetCalls()
			f.SetFaults(slackfake.Faults{First429: 1, RetryAfter: time.Second})
			if err := tt.a(c, u.ID); err != nil {
				t.Fatal(err)
			}
			reqs := f.Requests()
			if len(reqs) < 2 || reqs[0].Status != 429 {
				t.Fatalf("requests = %+v, want a 429 first", reqs)
			}
			if reqs[1].Method != reqs[0].Method {
				t.Fatalf("the request after the 429 is %s, want a retry of %s", reqs[1].Method, reqs[0].Method)
			}
			if gap := reqs[1].At.Sub(reqs[0].At); gap < 950*time.Millisecond {
				t.Errorf("retried %s after %s, want >= 1s (Retry-After: 1)", reqs[0].Method, gap)
			}
		})
	}
}

func TestRateLimitedError(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, nil)
	mustApply(t, c, act(connectors.CreateAccount, person(1), "", connectors.Entitlement{}))
	u, _ := f.UserByEmail(person(1).Email)
	mustSnapshot(t, c)
	// A wait longer than the transport honours comes back as RateLimited
	// with its RetryAfter, for the executor to schedule.
	f.SetFaults(slackfake.Faults{First429: 1, RetryAfter: 2 * time.Minute})
	err := c.Apply(t.Context(), act(connectors.Grant, person(1), connectors.AccountID(u.ID), ent("channel/eng")))
	if connectors.KindOf(err) != connectors.RateLimited || connectors.RetryAfter(err) != 2*time.Minute {
		t.Errorf("got %v (kind %s, retry after %s), want RateLimited after 2m", err, connectors.KindOf(err), connectors.RetryAfter(err))
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		code string
		want connectors.ErrorKind
	}{
		{"invalid_auth", connectors.Permission},
		{"not_authed", connectors.Permission},
		{"missing_scope", connectors.Permission},
		{"channel_not_found", connectors.NotFound},
		{"user_not_found", connectors.NotFound},
		{"no_such_subteam", connectors.NotFound},
		{"ratelimited", connectors.RateLimited},
		{"is_archived", connectors.Conflict},
		{"cant_kick_from_general", connectors.Conflict},
		{"invalid_cursor", connectors.Invalid},
		{"internal_error", connectors.Transient},
		{"something_new", connectors.Unknown},
	} {
		if got := kindForSlackError(tt.code); got != tt.want {
			t.Errorf("kindForSlackError(%q) = %s, want %s", tt.code, got, tt.want)
		}
	}
}

func TestSlackUserName(t *testing.T) {
	for _, tt := range []struct {
		p    connectors.Person
		want string
	}{
		{connectors.Person{UserName: "richard"}, "richard"},
		{connectors.Person{UserName: "Richard.Hendricks"}, "richard.hendricks"},
		{connectors.Person{Email: "Big Head@piedpiper.com"}, "big.head"},
		{connectors.Person{UserName: "a-very-long-user-name-indeed"}, "a-very-long-user-name"},
		{connectors.Person{UserName: "ÉLÉONORE"}, "l.onore"},
		{connectors.Person{UserName: "!!!"}, "user"},
	} {
		if got := slackUserName(tt.p); got != tt.want {
			t.Errorf("slackUserName(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestOpen(t *testing.T) {
	secrets := map[string]string{"env:SLACK": "xoxp-1", "env:SCIM": "xoxp-2"}
	resolve := func(ref string) (string, error) {
		if v, ok := secrets[ref]; ok {
			return v, nil
		}
		return "", fmt.Errorf("secret %s is not set", ref)
	}
	for _, tt := range []struct {
		settings string
		err      string
	}{
		{`{"token":"env:SLACK"}`, ""},
		{`{"token":"env:SLACK","scim_token":"env:SCIM","usergroups":["oncall"],"channels":["*"],"timeout":"5s","max_concurrent_requests":2}`, ""},
		{`{}`, "token: missing"},
		{`{"token":"env:NOPE"}`, "secret env:NOPE is not set"},
		{`{"token":"env:SLACK","scim_token":"env:NOPE"}`, "scim_token"},
		{`{"token":"env:SLACK","channels":["#general"]}`, "without the leading"},
		{`{"token":"env:SLACK","channels":["*","general"]}`, "means all"},
		{`{"token":"env:SLACK","usergroups":["oncall","oncall"]}`, "already listed"},
		{`{"token":"env:SLACK","api_url":"ftp://x"}`, "api_url"},
		{`{"token":"env:SLACK","timeout":"soon"}`, "duration"},
		{`{"token":"env:SLACK","max_concurrent_requests":-1}`, "negative"},
		{`{"token":"env:SLACK","tokens":"x"}`, "unknown field"},
	} {
		c, err := Open(t.Context(), connectors.Env{Name: "slack", Settings: jsonSettings(tt.settings), Secret: resolve})
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Open(%s): %v", tt.settings, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Open(%s) = %v, want an error containing %q", tt.settings, err, tt.err)
		case tt.err == "" && c.Name() != "slack":
			t.Errorf("Name() = %q", c.Name())
		}
		if err != nil && strings.Contains(err.Error(), "xoxp-") {
			t.Errorf("the error shows a token: %v", err)
		}
	}
}

// TestYAMLSettings checks that the documented roster.yaml block decodes
// strictly with the YAML library the config package uses.
func TestYAMLSettings(t *testing.T) {
	src := `
token: env:SLACK_TOKEN
scim_token: env:SLACK_SCIM_TOKEN
usergroups: ["*"]
channels: [general, random, eng]
private_channels: true
max_concurrent_requests: 4
timeout: 30s
api_url: http://127.0.0.1:9999/api/
scim_url: http://127.0.0.1:9999/scim/v2
`
	cfg := DefaultConfig()
	if err := yaml.NewDecoder(bytes.NewReader([]byte(src)), yaml.Strict(), yaml.DisallowUnknownField()).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v", cfg)
	want := "{APIURL:http://127.0.0.1:9999/api/ SCIMURL:http://127.0.0.1:9999/scim/v2/ Token:env:SLACK_TOKEN SCIMToken:env:SLACK_SCIM_TOKEN " +
		"Usergroups:[*] Channels:[general random eng] PrivateChannels:true MaxConcurrentRequests:4 Timeout:30000000000}"
	if got != want {
		t.Errorf("decoded\n%s\nwant\n%s", got, want)
	}
}

func TestCancelledContextNoRequest(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Apply(ctx, act(connectors.CreateAccount, person(1), "", connectors.Entitlement{})); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a cancelled context: %v", err)
	}
	if n := f.Calls().Total; n != 0 {
		t.Errorf("%d requests sent with a cancelled context", n)
	}
}
