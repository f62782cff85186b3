// Package connectortest is the conformance suite every Roster connector
// passes: the in-process memory app, and each real app against its
// httptest fake.
//
// Run drives one connector through the whole account lifecycle (create,
// grant, role change, revoke, suspend, restore, delete), repeats every
// action to prove it is idempotent, checks the classified errors the
// executor relies on (NotFound and Invalid are terminal), and reads back a
// snapshot large enough to need several pages. Every check is made on what
// Snapshot reports, never only on Apply returning nil.
//
// The suite fails the calling test (t.Fatalf / t.Errorf) with a message
// that names the action and what the snapshot showed; it never panics and
// does not call t.Parallel, so a newTarget may use t.Setenv and the like.
package connectortest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rosterhq/roster/connectors"
)

// Target is one fresh, empty app instance for one subtest.
type Target struct {
	// Connector is the instance under test.
	Connector connectors.Connector
	// People returns the i-th test person; every i gives a distinct
	// worker id, e-mail and userName. DefaultPerson is used when nil.
	People func(i int) connectors.Person
	// Grants lists at least one entitlement the instance offers (not the
	// account itself). The suite grants and revokes each; for a kind that
	// declares two roles or more it also changes the role.
	Grants []connectors.Entitlement
	// ManyMembers is how many accounts the pagination test creates: pick
	// more than two pages of the fake. 120 when zero.
	ManyMembers int
	// SuspendKeepsGrants is true when suspending an account leaves its
	// entitlements in place, false when the app drops them (Slack).
	SuspendKeepsGrants bool
}

// DefaultPerson is the i-th test person used when Target.People is nil.
func DefaultPerson(i int) connectors.Person {
	return connectors.Person{
		Worker:      connectors.WorkerID(fmt.Sprintf("w-%05d", i)),
		Email:       fmt.Sprintf("person%05d@example.com", i),
		UserName:    fmt.Sprintf("person%05d", i),
		GivenName:   "Person",
		FamilyName:  fmt.Sprintf("N%05d", i),
		DisplayName: fmt.Sprintf("Person N%05d", i),
		Manager:     "manager@example.com",
	}
}

// Run runs the conformance suite. newTarget is called once per subtest and
// must return a fresh app with none of the test people in it.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	t.Helper()
	subtests := []struct {
		name string
		fn   func(s *suite)
	}{
		{"Kinds", testKinds},
		{"CreateAccount", testCreate},
		{"AccountRole", testAccountRole},
		{"GrantRevoke", testGrantRevoke},
		{"SuspendRestore", testSuspendRestore},
		{"DeleteAccount", testDelete},
		{"GrantWithoutAccount", testGrantWithoutAccount},
		{"InvalidGrant", testInvalidGrant},
		{"CancelledContext", testCancelledContext},
		{"Pagination", testPagination},
	}
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) {
			st.fn(newSuite(t, newTarget(t)))
		})
	}
}

// suite is one subtest's view of its target.
type suite struct {
	t     *testing.T
	ctx   context.Context
	c     connectors.Connector
	tg    Target
	kinds map[string]connectors.KindSpec
}

func newSuite(t *testing.T, tg Target) *suite {
	t.Helper()
	if tg.Connector == nil {
		t.Fatal("connectortest: Target.Connector is nil")
	}
	if len(tg.Grants) == 0 {
		t.Fatal("connectortest: Target.Grants is empty; name at least one entitlement the app offers")
	}
	for _, g := range tg.Grants {
		if g.IsAccount() || g.Resource == "" {
			t.Fatalf("connectortest: Target.Grants: %q is not a grantable entitlement (need kind/resource, not the account)", g)
		}
	}
	if tg.People == nil {
		tg.People = DefaultPerson
	}
	if tg.ManyMembers <= 0 {
		tg.ManyMembers = 120
	}
	s := &suite{t: t, ctx: t.Context(), c: tg.Connector, tg: tg, kinds: map[string]connectors.KindSpec{}}
	for _, k := range tg.Connector.Kinds() {
		s.kinds[k.Name] = k
	}
	return s
}

func (s *suite) person(i int) connectors.Person { return s.tg.People(i) }

// action builds an action of kind k for p in this instance.
func (s *suite) action(k connectors.ActionKind, p connectors.Person, acct connectors.AccountID, e connectors.Entitlement) connectors.Action {
	return connectors.Action{
		Kind:        k,
		App:         s.c.Name(),
		Person:      p,
		Account:     acct,
		Entitlement: e,
		Reason:      "conformance",
	}
}

// apply applies a and fails the test on error.
func (s *suite) apply(a connectors.Action) {
	s.t.Helper()
	if err := s.c.Apply(s.ctx, a); err != nil {
		s.t.Fatalf("Apply(%s) account=%q: %v (kind %s)", a, a.Account, err, connectors.KindOf(err))
	}
}

// snapshot reads the state and checks its invariants.
func (s *suite) snapshot() *connectors.State {
	s.t.Helper()
	st, err := s.c.Snapshot(s.ctx)
	if err != nil {
		s.t.Fatalf("Snapshot: %v (kind %s)", err, connectors.KindOf(err))
	}
	checkState(s.t, s.c.Name(), st)
	return st
}

// checkState checks what every snapshot must satisfy: the app name,
// accounts ordered by ID without duplicates, entitlements in Less order
// without duplicates and without the account itself.
func checkState(t *testing.T, name string, st *connectors.State) {
	t.Helper()
	if st == nil {
		t.Fatal("Snapshot returned a nil state and no error")
	}
	if st.App != name {
		t.Errorf("State.App = %q, want the instance name %q", st.App, name)
	}
	for i, a := range st.Accounts {
		if a.ID == "" {
			t.Errorf("account %d (%+v) has an empty ID", i, a)
		}
		if i > 0 && !(st.Accounts[i-1].ID < a.ID) {
			t.Errorf("accounts not ordered by ID without duplicates: %q at %d follows %q", a.ID, i, st.Accounts[i-1].ID)
		}
		seen := map[connectors.EntitlementKey]bool{}
		for j, e := range a.Entitlements {
			if e.IsAccount() {
				t.Errorf("account %s lists the account itself (%q) among its entitlements", a.ID, e)
			}
			if seen[e.Key()] {
				t.Errorf("account %s holds %q more than once: %v", a.ID, e.Key(), a.Entitlements)
			}
			seen[e.Key()] = true
			if j > 0 && !a.Entitlements[j-1].Less(e) {
				t.Errorf("account %s entitlements not in SortEntitlements order: %v", a.ID, a.Entitlements)
			}
		}
	}
}

// matches reports whether account a belongs to p, comparing the strongest
// identifier both sides have: the worker id, then the e-mail, then the
// userName.
func matches(a connectors.AccountState, p connectors.Person) bool {
	switch {
	case a.Worker != "" && p.Worker != "":
		return a.Worker == p.Worker
	case a.Email != "" && p.Email != "":
		return strings.EqualFold(a.Email, p.Email)
	case a.UserName != "" && p.UserName != "":
		return strings.EqualFold(a.UserName, p.UserName)
	}
	return false
}

// accountsOf returns the accounts of st that belong to p.
func accountsOf(st *connectors.State, p connectors.Person) []connectors.AccountState {
	var out []connectors.AccountState
	for _, a := range st.Accounts {
		if matches(a, p) {
			out = append(out, a)
		}
	}
	return out
}

// account returns p's only account, failing if there is none or several,
// and checks that what the app reports about it is p's.
func (s *suite) account(st *connectors.State, p connectors.Person) connectors.AccountState {
	s.t.Helper()
	as := accountsOf(st, p)
	if len(as) != 1 {
		s.t.Fatalf("snapshot has %d accounts for worker %s (%s), want exactly 1: %+v", len(as), p.Worker, p.Email, as)
	}
	a := as[0]
	if a.Worker != "" && a.Worker != p.Worker {
		s.t.Errorf("account %s: Worker = %q, want %q", a.ID, a.Worker, p.Worker)
	}
	if a.Email != "" && !strings.EqualFold(a.Email, p.Email) {
		s.t.Errorf("account %s: Email = %q, want %q", a.ID, a.Email, p.Email)
	}
	if a.UserName != "" && !strings.EqualFold(a.UserName, p.UserName) {
		s.t.Errorf("account %s: UserName = %q, want %q", a.ID, a.UserName, p.UserName)
	}
	return a
}

// noAccount fails if st has an account for p.
func (s *suite) noAccount(st *connectors.State, p connectors.Person, after string) {
	s.t.Helper()
	if as := accountsOf(st, p); len(as) != 0 {
		s.t.Fatalf("after %s the snapshot still has an account for worker %s: %+v", after, p.Worker, as)
	}
}

// held returns the entitlements of a with the key k.
func held(a connectors.AccountState, k connectors.EntitlementKey) []connectors.Entitlement {
	var out []connectors.Entitlement
	for _, e := range a.Entitlements {
		if e.Key() == k {
			out = append(out, e)
		}
	}
	return out
}

// wantRole is the role a grant of g ends up holding: its own, or the
// kind's default.
func (s *suite) wantRole(g connectors.Entitlement) string {
	if g.Role != "" {
		return g.Role
	}
	return s.kinds[g.Kind].DefaultRole()
}

// expectHeld fails unless a holds g exactly once, with the expected role.
func (s *suite) expectHeld(a connectors.AccountState, g connectors.Entitlement, after string) {
	s.t.Helper()
	h := held(a, g.Key())
	if len(h) != 1 {
		s.t.Fatalf("after %s account %s holds %q %d times, want once: %v", after, a.ID, g.Key(), len(h), a.Entitlements)
	}
	if want := s.wantRole(g); h[0].Role != want {
		s.t.Fatalf("after %s account %s holds %q, want role %q", after, a.ID, h[0], want)
	}
}

// expectNotHeld fails if a holds anything with g's key.
func (s *suite) expectNotHeld(a connectors.AccountState, g connectors.Entitlement, after string) {
	s.t.Helper()
	if h := held(a, g.Key()); len(h) != 0 {
		s.t.Fatalf("after %s account %s still holds %v", after, a.ID, h)
	}
}

// create creates p's account and returns it as the snapshot shows it.
func (s *suite) create(p connectors.Person) connectors.AccountState {
	s.t.Helper()
	s.apply(s.action(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	return s.account(s.snapshot(), p)
}

func testKinds(s *suite) {
	if s.c.Name() == "" {
		s.t.Error("Name() is empty")
	}
	seen := map[string]bool{}
	for _, k := range s.c.Kinds() {
		if k.Name == "" {
			s.t.Errorf("Kinds() has a kind with no name: %+v", k)
		}
		if seen[k.Name] {
			s.t.Errorf("Kinds() lists %q twice", k.Name)
		}
		seen[k.Name] = true
		roles := map[string]bool{}
		for _, r := range k.Roles {
			if r == "" || roles[r] {
				s.t.Errorf("kind %q: roles %q have an empty or repeated role", k.Name, k.Roles)
			}
			roles[r] = true
		}
	}
	for _, g := range s.tg.Grants {
		k, ok := s.kinds[g.Kind]
		if !ok {
			s.t.Errorf("Target.Grants uses kind %q, which Kinds() does not list (%v)", g.Kind, s.c.Kinds())
			continue
		}
		if g.Role != "" && k.RoleRank(g.Role) < 0 {
			s.t.Errorf("Target.Grants: %q names role %q, which kind %q does not declare (%q)", g, g.Role, k.Name, k.Roles)
		}
	}
}

func testCreate(s *suite) {
	p := s.person(1)
	if as := accountsOf(s.snapshot(), p); len(as) != 0 {
		s.t.Fatalf("fresh app already has an account for %s: %+v", p.Worker, as)
	}
	first := s.create(p)
	if first.Suspended {
		s.t.Errorf("new account %s is suspended", first.ID)
	}
	if len(first.Entitlements) != 0 {
		s.t.Errorf("new account %s holds %v, want nothing", first.ID, first.Entitlements)
	}

	// Creating again is a no-op: still exactly one account, the same one.
	s.apply(s.action(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	again := s.account(s.snapshot(), p)
	if again.ID != first.ID {
		s.t.Errorf("second create changed the account: ID %q, was %q", again.ID, first.ID)
	}

	// A second person gets a second, distinct account.
	q := s.person(2)
	other := s.create(q)
	if other.ID == first.ID {
		s.t.Errorf("two people share account %q", first.ID)
	}
	s.account(s.snapshot(), p)
}

func testAccountRole(s *suite) {
	spec, ok := s.kinds[connectors.KindAccount]
	if !ok || len(spec.Roles) == 0 {
		s.t.Skip("the instance declares no account roles")
	}
	p, q := s.person(1), s.person(2)
	top := spec.Roles[len(spec.Roles)-1]
	s.apply(s.action(connectors.CreateAccount, p, "", connectors.Entitlement{Kind: connectors.KindAccount, Role: top}))
	s.apply(s.action(connectors.CreateAccount, q, "", connectors.Entitlement{}))
	st := s.snapshot()
	if a := s.account(st, p); a.Role != top {
		s.t.Errorf("account created with role %q reports role %q", top, a.Role)
	}
	if a := s.account(st, q); a.Role != spec.DefaultRole() {
		s.t.Errorf("account created with no role reports role %q, want the default %q", a.Role, spec.DefaultRole())
	}
}

func testGrantRevoke(s *suite) {
	p := s.person(1)
	acct := s.create(p)

	// Grant each entitlement with the account id known.
	for i, g := range s.tg.Grants {
		s.apply(s.action(connectors.Grant, p, acct.ID, g))
		a := s.account(s.snapshot(), p)
		s.expectHeld(a, g, "grant "+g.String())
		for _, earlier := range s.tg.Grants[:i] {
			s.expectHeld(a, earlier, "grant "+g.String())
		}
	}

	// Granting again, this time without the account id, changes nothing.
	for _, g := range s.tg.Grants {
		s.apply(s.action(connectors.Grant, p, "", g))
	}
	a := s.account(s.snapshot(), p)
	for _, g := range s.tg.Grants {
		s.expectHeld(a, g, "granting everything twice")
	}
	if len(a.Entitlements) != len(s.tg.Grants) {
		s.t.Errorf("after granting %d entitlements twice account %s holds %v", len(s.tg.Grants), a.ID, a.Entitlements)
	}

	// A grant with another role is an update of the one entitlement.
	current := map[connectors.EntitlementKey]connectors.Entitlement{}
	for _, g := range s.tg.Grants {
		g.Role = s.wantRole(g)
		current[g.Key()] = g
	}
	for _, g := range s.tg.Grants {
		spec := s.kinds[g.Kind]
		if len(spec.Roles) < 2 {
			continue
		}
		changed := g
		for _, r := range spec.Roles {
			if r != s.wantRole(g) {
				changed.Role = r
				break
			}
		}
		s.apply(s.action(connectors.Grant, p, acct.ID, changed))
		s.expectHeld(s.account(s.snapshot(), p), changed, "role change to "+changed.String())
		s.apply(s.action(connectors.Grant, p, "", changed))
		s.expectHeld(s.account(s.snapshot(), p), changed, "repeated role change to "+changed.String())
		current[g.Key()] = changed
	}

	// Revoke each; the others stay; revoking again is a no-op.
	for i, g := range s.tg.Grants {
		e := current[g.Key()]
		s.apply(s.action(connectors.Revoke, p, acct.ID, e))
		a := s.account(s.snapshot(), p)
		s.expectNotHeld(a, e, "revoke "+e.String())
		for _, later := range s.tg.Grants[i+1:] {
			s.expectHeld(a, current[later.Key()], "revoke "+e.String())
		}
		s.apply(s.action(connectors.Revoke, p, "", e))
		s.expectNotHeld(s.account(s.snapshot(), p), e, "revoking "+e.String()+" twice")
	}
	if a := s.account(s.snapshot(), p); len(a.Entitlements) != 0 {
		s.t.Errorf("after revoking everything account %s holds %v", a.ID, a.Entitlements)
	}
}

func testSuspendRestore(s *suite) {
	p := s.person(1)
	acct := s.create(p)
	g := s.tg.Grants[0]
	s.apply(s.action(connectors.Grant, p, acct.ID, g))

	checkSuspended := func(after string) {
		s.t.Helper()
		a := s.account(s.snapshot(), p)
		if !a.Suspended {
			s.t.Fatalf("after %s account %s is not suspended", after, a.ID)
		}
		if s.tg.SuspendKeepsGrants {
			s.expectHeld(a, g, after)
		} else {
			s.expectNotHeld(a, g, after)
		}
	}
	s.apply(s.action(connectors.SuspendAccount, p, acct.ID, connectors.Entitlement{}))
	checkSuspended("suspend")
	s.apply(s.action(connectors.SuspendAccount, p, "", connectors.Entitlement{}))
	checkSuspended("suspending twice")

	checkRestored := func(after string) {
		s.t.Helper()
		a := s.account(s.snapshot(), p)
		if a.Suspended {
			s.t.Fatalf("after %s account %s is still suspended", after, a.ID)
		}
		if a.ID != acct.ID {
			s.t.Errorf("after %s the account is %q, was %q", after, a.ID, acct.ID)
		}
		if s.tg.SuspendKeepsGrants {
			s.expectHeld(a, g, after)
		}
	}
	s.apply(s.action(connectors.RestoreAccount, p, acct.ID, connectors.Entitlement{}))
	checkRestored("restore")
	s.apply(s.action(connectors.RestoreAccount, p, "", connectors.Entitlement{}))
	checkRestored("restoring twice")

	// A restored account can be granted to again.
	s.apply(s.action(connectors.Grant, p, "", g))
	s.expectHeld(s.account(s.snapshot(), p), g, "grant after restore")
}

func testDelete(s *suite) {
	p, q := s.person(1), s.person(2)
	acct := s.create(p)
	s.create(q)
	s.apply(s.action(connectors.Grant, p, acct.ID, s.tg.Grants[0]))

	s.apply(s.action(connectors.DeleteAccount, p, acct.ID, connectors.Entitlement{}))
	st := s.snapshot()
	s.noAccount(st, p, "delete")
	s.account(st, q) // the other person is untouched

	// Deleting again is a no-op, with the stale account id or without one.
	s.apply(s.action(connectors.DeleteAccount, p, acct.ID, connectors.Entitlement{}))
	s.apply(s.action(connectors.DeleteAccount, p, "", connectors.Entitlement{}))
	st = s.snapshot()
	s.noAccount(st, p, "deleting twice")
	s.account(st, q)
}

func testGrantWithoutAccount(s *suite) {
	p := s.person(1)
	err := s.c.Apply(s.ctx, s.action(connectors.Grant, p, "", s.tg.Grants[0]))
	if err == nil {
		s.t.Fatal("grant to a person with no account: got nil error, want a NotFound error")
	}
	if k := connectors.KindOf(err); k != connectors.NotFound {
		s.t.Errorf("grant to a person with no account: error %q has kind %s, want %s", err, k, connectors.NotFound)
	}
	if connectors.Retryable(err) {
		s.t.Errorf("grant to a person with no account: error %q is retryable, want terminal", err)
	}
	s.noAccount(s.snapshot(), p, "a failed grant")
}

func testInvalidGrant(s *suite) {
	p := s.person(1)
	acct := s.create(p)

	bad := []connectors.Entitlement{{Kind: "no-such-kind", Resource: "conformance"}}
	for _, g := range s.tg.Grants {
		if len(s.kinds[g.Kind].Roles) > 0 {
			bad = append(bad, connectors.Entitlement{Kind: g.Kind, Resource: g.Resource, Role: "no-such-role"})
			break
		}
	}
	for _, e := range bad {
		err := s.c.Apply(s.ctx, s.action(connectors.Grant, p, acct.ID, e))
		if err == nil {
			s.t.Errorf("grant of %q: got nil error, want an Invalid error", e)
			continue
		}
		if k := connectors.KindOf(err); k != connectors.Invalid {
			s.t.Errorf("grant of %q: error %q has kind %s, want %s", e, err, k, connectors.Invalid)
		}
		if connectors.Retryable(err) {
			s.t.Errorf("grant of %q: error %q is retryable, want terminal", e, err)
		}
	}
	if a := s.account(s.snapshot(), p); len(a.Entitlements) != 0 {
		s.t.Errorf("after rejected grants account %s holds %v, want nothing", a.ID, a.Entitlements)
	}
}

func testCancelledContext(s *suite) {
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	if _, err := s.c.Snapshot(ctx); err == nil {
		s.t.Error("Snapshot with a cancelled context: got nil error")
	}
	p := s.person(1)
	if err := s.c.Apply(ctx, s.action(connectors.CreateAccount, p, "", connectors.Entitlement{})); err == nil {
		s.t.Error("Apply(create) with a cancelled context: got nil error")
	}
	s.noAccount(s.snapshot(), p, "a create with a cancelled context")
}

func testPagination(s *suite) {
	n := s.tg.ManyMembers
	g := s.tg.Grants[0]
	for i := range n {
		s.apply(s.action(connectors.CreateAccount, s.person(1000+i), "", connectors.Entitlement{}))
	}
	for i := range n {
		s.apply(s.action(connectors.Grant, s.person(1000+i), "", g))
	}
	st := s.snapshot()
	if len(st.Accounts) < n {
		s.t.Fatalf("snapshot has %d accounts, want at least %d", len(st.Accounts), n)
	}
	ids := map[connectors.AccountID]int{}
	for i := range n {
		p := s.person(1000 + i)
		a := s.account(st, p)
		if j, dup := ids[a.ID]; dup {
			s.t.Fatalf("people %d and %d share account %q", j, i, a.ID)
		}
		ids[a.ID] = i
		s.expectHeld(a, g, fmt.Sprintf("granting %q to %d accounts", g, n))
	}
}
