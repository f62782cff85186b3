package github

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/github/githubfake"
)

func act(kind connectors.ActionKind, p connectors.Person, e connectors.Entitlement) connectors.Action {
	return connectors.Action{Kind: kind, App: "github", Person: p, Entitlement: e, Reason: "test"}
}

func team(slug, role string) connectors.Entitlement {
	return connectors.Entitlement{Kind: "team", Resource: slug, Role: role}
}

// accountOf returns the account whose worker is w, failing unless there
// is exactly one.
func accountOf(t *testing.T, st *connectors.State, w connectors.WorkerID) connectors.AccountState {
	t.Helper()
	var out []connectors.AccountState
	for _, a := range st.Accounts {
		if a.Worker == w {
			out = append(out, a)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d accounts for worker %s, want 1: %+v", len(out), w, st.Accounts)
	}
	return out[0]
}

func noAccountOf(t *testing.T, st *connectors.State, w connectors.WorkerID) {
	t.Helper()
	for _, a := range st.Accounts {
		if a.Worker == w {
			t.Fatalf("worker %s still has account %+v", w, a)
		}
	}
}

// TestFaultsRoundTrip drives joiners, a mover, a leaver, a rehire and a
// deletion through a fake that answers a fifth of all requests with 429,
// 502 (before or after making the change) or a hang, retrying as the
// executor does; the org must end in the right state with every change
// made once.
func TestFaultsRoundTrip(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: true,
		Faults: githubfake.Faults{Rate429: 0.05, Rate5xx: 0.06, RateLost: 0.06, RateHang: 0.03, RetryAfter: -1, Seed: 7}})
	// Built with New to shorten the transport's backoff (250ms by
	// default) so the many retries take little time.
	c, err := New("github", Config{Org: "piedpiper", Token: "env:GH_TOKEN", Teams: []string{"*"}, BaseURL: f.URL + "/", Timeout: Duration(150 * time.Millisecond)},
		Credentials{Token: f.Token()}, Deps{DB: openDB(t), RetryBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	p := make([]connectors.Person, 5)
	for i := range p {
		p[i] = person(i)
	}
	apply := func(kind connectors.ActionKind, i int, e connectors.Entitlement) {
		t.Helper()
		applyRetrying(t, ctx, c, act(kind, p[i], e))
	}
	for i := range p {
		role := ""
		if i == 2 {
			role = "admin"
		}
		apply(connectors.CreateAccount, i, connectors.Entitlement{Kind: connectors.KindAccount, Role: role})
	}
	snapshotRetrying(t, ctx, c)
	apply(connectors.Grant, 0, team("backend", ""))
	apply(connectors.Grant, 0, team("frontend", "maintainer"))
	apply(connectors.Grant, 1, team("backend", ""))
	for i := 2; i < 5; i++ {
		apply(connectors.Grant, i, team("infra", ""))
	}
	apply(connectors.Grant, 0, team("backend", "maintainer")) // mover: role change
	apply(connectors.Revoke, 0, team("frontend", "maintainer"))
	snapshotRetrying(t, ctx, c)
	apply(connectors.SuspendAccount, 0, connectors.Entitlement{}) // leaver
	if a := accountOf(t, snapshotRetrying(t, ctx, c), p[0].Worker); !a.Suspended || len(a.Entitlements) != 0 {
		t.Fatalf("after suspend: %+v", a)
	}
	apply(connectors.RestoreAccount, 0, connectors.Entitlement{}) // rehire
	apply(connectors.Grant, 0, team("backend", ""))
	apply(connectors.DeleteAccount, 1, connectors.Entitlement{})
	// Repeats change nothing.
	apply(connectors.DeleteAccount, 1, connectors.Entitlement{})
	apply(connectors.Grant, 3, team("infra", ""))
	apply(connectors.CreateAccount, 4, connectors.Entitlement{})

	st := snapshotRetrying(t, ctx, c)
	noAccountOf(t, st, p[1].Worker)
	want := map[connectors.WorkerID]string{
		p[0].Worker: "member [team/backend#member]",
		p[2].Worker: "admin [team/infra#member]",
		p[3].Worker: "member [team/infra#member]",
		p[4].Worker: "member [team/infra#member]",
	}
	for w, s := range want {
		a := accountOf(t, st, w)
		if got := fmt.Sprintf("%s %v", a.Role, a.Entitlements); got != s || a.Suspended || a.Pending {
			t.Errorf("worker %s: %s suspended=%v pending=%v, want %s", w, got, a.Suspended, a.Pending, s)
		}
	}

	// The fake's own view.
	wantMembers := map[string]string{"person00000": "member", "person00002": "admin", "person00003": "member", "person00004": "member"}
	if got := f.Members(); !mapsEqual(got, wantMembers) {
		t.Errorf("members %v, want %v", got, wantMembers)
	}
	if got := f.TeamMembers("backend"); !mapsEqual(got, map[string]string{"person00000": "member"}) {
		t.Errorf("team backend %v", got)
	}
	if got := f.TeamMembers("frontend"); len(got) != 0 {
		t.Errorf("team frontend %v, want empty", got)
	}
	if got := f.Invitations(); len(got) != 0 {
		t.Errorf("invitations left: %+v", got)
	}
	// Nothing done twice: one invitation per joiner, one more for the
	// rehire, one removal each for the leaver and the deleted person.
	count := map[string]int{}
	for _, w := range f.Writes() {
		count[w.Target+" "+w.What]++
	}
	wantCount := map[string]int{
		"person00000 invite": 2, "person00001 invite": 1, "person00002 invite": 1, "person00003 invite": 1, "person00004 invite": 1,
		"person00000 remove": 1, "person00001 remove": 1,
	}
	for k, n := range wantCount {
		if count[k] != n {
			t.Errorf("%q happened %d times, want %d (write log: %v)", k, count[k], n, count)
		}
	}
	calls := f.Calls()
	faults := 0
	for _, r := range f.Requests() {
		if r.Fault != "" {
			faults++
		}
	}
	if faults < 10 {
		t.Errorf("only %d of %d requests were faults: the test proves little", faults, calls.Total)
	}
	t.Logf("%d requests, %d faults injected", calls.Total, faults)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestRetryAfterHonoured: a 429 with Retry-After: 1 is retried no sooner
// than a second later, and the wait is logged without the token.
func TestRetryAfterHonoured(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams})
	logs := &logRecorder{}
	c := open(t, setup{url: f.URL + "/", token: f.Token(), logger: logs})
	f.SetFaults(githubfake.Faults{Burst429: 1, RetryAfter: time.Second})
	if _, err := c.Snapshot(t.Context()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	reqs := f.Requests()
	i := slices.IndexFunc(reqs, func(r githubfake.Request) bool { return r.Fault == "429" })
	if i < 0 {
		t.Fatal("no 429 was injected")
	}
	j := slices.IndexFunc(reqs[i+1:], func(r githubfake.Request) bool {
		return r.Method == reqs[i].Method && r.Path == reqs[i].Path && r.Query == reqs[i].Query
	})
	if j < 0 {
		t.Fatalf("the request answered 429 (%s %s) was not retried", reqs[i].Method, reqs[i].Path)
	}
	retry := reqs[i+1+j]
	if gap := retry.Time.Sub(reqs[i].Time); gap < 950*time.Millisecond {
		t.Errorf("retried %v after the 429, want >= 1s (Retry-After: 1)", gap)
	}
	if retry.Status != 200 {
		t.Errorf("retry answered %d", retry.Status)
	}
	out := logs.String()
	if !strings.Contains(out, "waiting before retrying") || !strings.Contains(out, "status=429") {
		t.Errorf("the wait was not logged: %s", out)
	}
	if strings.Contains(out, f.Token()) {
		t.Error("the log contains the token")
	}
}

func TestWrongToken(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true})
	logs := &logRecorder{}
	const bad = "ghp_not-the-right-token-0123456789"
	c := open(t, setup{url: f.URL + "/", token: bad, logger: logs})
	ctx := t.Context()
	_, err := c.Snapshot(ctx)
	if k := connectors.KindOf(err); k != connectors.Permission {
		t.Errorf("Snapshot with a wrong token: %v (kind %s), want a Permission error", err, k)
	}
	for _, a := range []connectors.Action{
		act(connectors.CreateAccount, person(1), connectors.Entitlement{}),
		act(connectors.Grant, person(1), team("backend", "")),
		act(connectors.SuspendAccount, person(1), connectors.Entitlement{}),
	} {
		err := c.Apply(ctx, a)
		if k := connectors.KindOf(err); k != connectors.Permission || connectors.Retryable(err) {
			t.Errorf("Apply(%s) with a wrong token: %v (kind %s), want a terminal Permission error", a, err, k)
		}
		if err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	if w := f.Writes(); len(w) != 0 {
		t.Errorf("writes with a wrong token: %+v", w)
	}
	if inv := f.Invitations(); len(inv) != 0 {
		t.Errorf("invitations with a wrong token: %+v", inv)
	}
	if strings.Contains(logs.String(), bad) {
		t.Error("the log contains the token")
	}
}

// TestPrimaryRateLimit: an exhausted hourly budget is returned as
// RateLimited with the wait until the reset, not waited out.
func TestPrimaryRateLimit(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, RateLimit: 3})
	c := open(t, setup{url: f.URL + "/", token: f.Token()})
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		err = c.Apply(t.Context(), act(connectors.CreateAccount, person(i), connectors.Entitlement{}))
	}
	if k := connectors.KindOf(err); k != connectors.RateLimited {
		t.Fatalf("after the budget: %v (kind %s), want RateLimited", err, k)
	}
	if ra := connectors.RetryAfter(err); ra < 50*time.Minute || ra > 61*time.Minute {
		t.Errorf("RetryAfter %v, want about an hour", ra)
	}
}

func TestConditionalSnapshot(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams})
	for i := range 250 {
		login := fmt.Sprintf("dev%03d", i)
		f.AddMember(login, "member")
		f.AddTeamMember(suiteTeams[i%3], login, "member")
	}
	c := open(t, setup{url: f.URL + "/", token: f.Token()})
	first, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := f.Calls()
	f.ResetCalls()
	second, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after := f.Calls()
	if after.Total != before.Total || after.RateLimited != 0 || after.NotModified != after.Total {
		t.Errorf("second snapshot: %d calls, %d counted, %d 304s; first had %d calls; want the same calls, all 304",
			after.Total, after.RateLimited, after.NotModified, before.Total)
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Error("the second snapshot differs from the first")
	}
	if len(second.Accounts) != 250 || second.Accounts[0].Worker != "" {
		t.Errorf("want 250 unlinked members, got %d (first %+v)", len(second.Accounts), second.Accounts[0])
	}
	// A change is seen at once.
	f.AddTeamMember("backend", "dev001", "maintainer")
	third, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := third.Accounts[1].Entitlements; len(got) != 2 || got[0] != team("backend", "maintainer") {
		t.Errorf("dev001 after the change: %v", got)
	}
}

// TestEmailInvitation follows a person without githubUsername: invited by
// e-mail, teams kept while pending, accepted by a login GitHub does not
// name, linked once HR supplies the login.
func TestEmailInvitation(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true})
	c := open(t, setup{url: f.URL + "/", token: f.Token(), db: openDB(t), extra: "invite_by_email: true\n"})
	ctx := t.Context()
	p := connectors.Person{Worker: "w-77", Email: "Dinesh@PiedPiper.com"}
	applyRetrying(t, ctx, c, act(connectors.CreateAccount, p, connectors.Entitlement{}))
	applyRetrying(t, ctx, c, act(connectors.CreateAccount, p, connectors.Entitlement{})) // idempotent
	if inv := f.Invitations(); len(inv) != 1 || inv[0].Email != p.Email {
		t.Fatalf("invitations %+v, want one to %s", inv, p.Email)
	}
	applyRetrying(t, ctx, c, act(connectors.Grant, p, team("backend", "")))
	st := snapshotRetrying(t, ctx, c)
	a := accountOf(t, st, p.Worker)
	if !a.Pending || !strings.HasPrefix(string(a.ID), "invitation:") || !strings.EqualFold(a.Email, p.Email) ||
		fmt.Sprint(a.Entitlements) != "[team/backend#member]" {
		t.Fatalf("pending e-mail invitation: %+v", a)
	}
	if err := c.Apply(ctx, act(connectors.Grant, p, team("nosuch", ""))); connectors.KindOf(err) != connectors.NotFound {
		t.Errorf("grant of an unknown team: %v, want NotFound", err)
	}

	login, err := f.AcceptInvitation("dinesh@piedpiper.com")
	if err != nil {
		t.Fatal(err)
	}
	st = snapshotRetrying(t, ctx, c)
	a = accountOf(t, st, p.Worker)
	if a.Pending || a.Suspended || len(a.Entitlements) != 0 || !strings.HasPrefix(string(a.ID), "invitation:") {
		t.Errorf("accepted e-mail invitation: %+v", a)
	}
	orphan := slices.IndexFunc(st.Accounts, func(x connectors.AccountState) bool { return string(x.ID) == login })
	if orphan < 0 || st.Accounts[orphan].Worker != "" {
		t.Errorf("the login that accepted (%s) should be an unlinked member: %+v", login, st.Accounts)
	}
	// Without the login Roster cannot act on the account, and says why.
	a0 := act(connectors.Grant, p, team("backend", ""))
	a0.Account = a.ID
	err = c.Apply(ctx, a0)
	if k := connectors.KindOf(err); k != connectors.Conflict || !strings.Contains(err.Error(), "githubUsername") {
		t.Errorf("grant to an accepted e-mail invitation: %v (kind %s), want a Conflict naming githubUsername", err, k)
	}
	if err := c.Apply(ctx, connectors.Action{Kind: connectors.SuspendAccount, Person: p, Account: a.ID}); connectors.KindOf(err) != connectors.Conflict {
		t.Errorf("suspend of an accepted e-mail invitation: %v, want Conflict", err)
	}
	// HR supplies the login: the grant links it.
	p.Attributes = map[string]string{"githubUsername": login}
	a0.Person = p
	applyRetrying(t, ctx, c, a0)
	st = snapshotRetrying(t, ctx, c)
	a = accountOf(t, st, p.Worker)
	if string(a.ID) != login || fmt.Sprint(a.Entitlements) != "[team/backend#member]" || a.Pending {
		t.Errorf("after linking: %+v", a)
	}
}

// TestExpiredEmailInvitation: an expired e-mail invitation is no account,
// and creating the account invites again.
func TestExpiredEmailInvitation(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams})
	c := open(t, setup{url: f.URL + "/", token: f.Token(), extra: "invite_by_email: true\n"})
	ctx := t.Context()
	p := connectors.Person{Worker: "w-88", Email: "gavin@hooli.com"}
	applyRetrying(t, ctx, c, act(connectors.CreateAccount, p, connectors.Entitlement{}))
	if err := f.ExpireInvitation(f.Invitations()[0].ID); err != nil {
		t.Fatal(err)
	}
	noAccountOf(t, snapshotRetrying(t, ctx, c), p.Worker)
	applyRetrying(t, ctx, c, act(connectors.CreateAccount, p, connectors.Entitlement{}))
	if inv := f.Invitations(); len(inv) != 1 {
		t.Fatalf("after re-inviting: %+v", inv)
	}
	if a := accountOf(t, snapshotRetrying(t, ctx, c), p.Worker); !a.Pending {
		t.Errorf("re-invited account %+v is not pending", a)
	}
	// A leaver's e-mail invitation is cancelled, and the account reported
	// suspended until deleted.
	applyRetrying(t, ctx, c, act(connectors.SuspendAccount, p, connectors.Entitlement{}))
	if inv := f.Invitations(); len(inv) != 0 {
		t.Errorf("invitation not cancelled: %+v", inv)
	}
	if a := accountOf(t, snapshotRetrying(t, ctx, c), p.Worker); !a.Suspended {
		t.Errorf("after suspend: %+v", a)
	}
	applyRetrying(t, ctx, c, act(connectors.DeleteAccount, p, connectors.Entitlement{}))
	noAccountOf(t, snapshotRetrying(t, ctx, c), p.Worker)
}

// TestLinksPersist: the link table lives in the data file, so a new
// instance (the next CLI run) still knows whose login is whose.
func TestLinksPersist(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true})
	f.AddMember("ghost", "member")
	db := openDB(t)
	ctx := t.Context()
	p := person(3)
	first := open(t, setup{url: f.URL + "/", token: f.Token(), db: db})
	applyRetrying(t, ctx, first, act(connectors.CreateAccount, p, connectors.Entitlement{}))
	applyRetrying(t, ctx, first, act(connectors.Grant, p, team("infra", "maintainer")))
	if _, err := f.AcceptInvitation(p.UserName); err != nil {
		t.Fatal(err)
	}
	second := open(t, setup{url: f.URL + "/", token: f.Token(), db: db})
	st := snapshotRetrying(t, ctx, second)
	a := accountOf(t, st, p.Worker)
	if string(a.ID) != p.UserName || a.Pending || !strings.EqualFold(a.Email, p.Email) || fmt.Sprint(a.Entitlements) != "[team/infra#maintainer]" {
		t.Errorf("after acceptance, from a new instance: %+v", a)
	}
	if g := st.Accounts[slices.IndexFunc(st.Accounts, func(x connectors.AccountState) bool { return x.ID == "ghost" })]; g.Worker != "" || g.Email != "" {
		t.Errorf("an unlinked member carries a worker: %+v", g)
	}
}

// TestExistingMemberIsLinked: a worker who is already a member (Roster
// adopted an org) is linked by CreateAccount, not invited.
func TestExistingMemberIsLinked(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams})
	f.AddMember("gilfoyle", "admin")
	c := open(t, setup{url: f.URL + "/", token: f.Token()})
	p := connectors.Person{Worker: "w-003", Email: "bertram.gilfoyle@piedpiper.com", Attributes: map[string]string{"githubUsername": "Gilfoyle"}}
	applyRetrying(t, t.Context(), c, act(connectors.CreateAccount, p, connectors.Entitlement{Kind: connectors.KindAccount, Role: "admin"}))
	if len(f.Writes()) != 0 {
		t.Errorf("linking wrote to GitHub: %+v", f.Writes())
	}
	a := accountOf(t, snapshotRetrying(t, t.Context(), c), "w-003")
	if a.ID != "gilfoyle" || a.Role != "admin" {
		t.Errorf("linked account %+v", a)
	}
}

func TestRehireKeepsRole(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: true})
	c := open(t, setup{url: f.URL + "/", token: f.Token()})
	ctx := t.Context()
	p := person(9)
	applyRetrying(t, ctx, c, act(connectors.CreateAccount, p, connectors.Entitlement{Kind: connectors.KindAccount, Role: "admin"}))
	applyRetrying(t, ctx, c, act(connectors.SuspendAccount, p, connectors.Entitlement{}))
	if a := accountOf(t, snapshotRetrying(t, ctx, c), p.Worker); !a.Suspended || a.Role != "admin" {
		t.Errorf("suspended: %+v", a)
	}
	applyRetrying(t, ctx, c, act(connectors.RestoreAccount, p, connectors.Entitlement{}))
	if a := accountOf(t, snapshotRetrying(t, ctx, c), p.Worker); a.Suspended || a.Role != "admin" {
		t.Errorf("restored: %+v", a)
	}
	var reinstated bool
	for _, w := range f.Writes() {
		reinstated = reinstated || w.What == "invite" && w.Detail == "admin" && w.Target == p.UserName && w.Seq > 1
	}
	if !reinstated {
		t.Errorf("no reinstating invitation in %+v", f.Writes())
	}
}

func TestManagedTeams(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: true})
	f.AddMember("richard", "member")
	f.AddTeamMember("backend", "richard", "member")
	f.AddTeamMember("frontend", "richard", "maintainer")
	c := open(t, setup{url: f.URL + "/", token: f.Token(), extra: "teams: [backend, nosuch]\n"})
	st := snapshotRetrying(t, t.Context(), c)
	if len(st.Accounts) != 1 || fmt.Sprint(st.Accounts[0].Entitlements) != "[team/backend#member]" {
		t.Errorf("snapshot with teams [backend]: %+v", st.Accounts)
	}
	p := connectors.Person{Worker: "w-1", Attributes: map[string]string{"githubUsername": "richard"}}
	err := c.Apply(t.Context(), act(connectors.Grant, p, team("frontend", "")))
	if connectors.KindOf(err) != connectors.Invalid {
		t.Errorf("grant of an unmanaged team: %v, want Invalid", err)
	}
	err = c.Apply(t.Context(), act(connectors.Grant, p, team("nosuch", "")))
	if connectors.KindOf(err) != connectors.NotFound || connectors.Retryable(err) {
		t.Errorf("grant of a team that does not exist: %v, want a terminal NotFound", err)
	}
	unknown, err := c.UnknownTeams(t.Context(), []string{"infra", "nosuch", "backend", "ghosts"})
	if err != nil || fmt.Sprint(unknown) != "[ghosts nosuch]" {
		t.Errorf("UnknownTeams = %v, %v", unknown, err)
	}
}

func TestMFA(t *testing.T) {
	f := newFake(t, githubfake.Options{})
	for _, l := range []string{"richard", "dinesh", "gilfoyle"} {
		f.AddMember(l, "member")
	}
	f.SetTwoFactor("gilfoyle", false)
	f.SetTwoFactor("dinesh", false)
	f.SetTwoFactor("erlich", false) // not a member
	c := open(t, setup{url: f.URL + "/", token: f.Token()})
	got, err := c.AccountsWithoutMFA(t.Context())
	if err != nil || fmt.Sprint(got) != "[dinesh gilfoyle]" {
		t.Errorf("AccountsWithoutMFA = %v, %v", got, err)
	}
}

// appKey writes a fresh RSA key as a PKCS #1 PEM file.
func appKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "app.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return key, path
}

// clock is a settable clock shared by a connector and its fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func appSettings(url, keyPath string) string {
	return fmt.Sprintf("org: piedpiper\nbase_url: %s\nteams: [\"*\"]\napp: {app_id: 4242, installation_id: 77, private_key: \"file:%s\"}\n", url, keyPath)
}

func TestAppAuth(t *testing.T) {
	key, path := appKey(t)
	clk := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, Now: clk.now,
		App: &githubfake.App{ID: 4242, InstallationID: 77, PublicKey: &key.PublicKey, TokenTTL: time.Hour, Members: "write"}})
	c := open(t, setup{settings: appSettings(f.URL+"/", path), now: clk.now})
	ctx := t.Context()
	tokens := func() int { return f.Calls().ByRoute["POST /app/installations/{installation_id}/access_tokens"] }

	applyRetrying(t, ctx, c, act(connectors.CreateAccount, person(1), connectors.Entitlement{}))
	snapshotRetrying(t, ctx, c)
	if n := tokens(); n != 1 {
		t.Errorf("%d installation tokens for two calls, want 1 (cached)", n)
	}
	clk.add(56 * time.Minute) // within 5 minutes of expiry: refreshed
	snapshotRetrying(t, ctx, c)
	if n := tokens(); n != 2 {
		t.Errorf("%d installation tokens after 56 minutes, want 2", n)
	}
	if missing, err := c.Check(ctx); err != nil || len(missing) != 0 {
		t.Errorf("Check with members:write = %v, %v", missing, err)
	}

	// The wrong key: GitHub rejects the JWT.
	other, otherPath := appKey(t)
	_ = other
	bad := open(t, setup{settings: appSettings(f.URL+"/", otherPath), now: clk.now})
	_, err := bad.Snapshot(ctx)
	if k := connectors.KindOf(err); k != connectors.Permission {
		t.Errorf("Snapshot with the wrong app key: %v (kind %s), want Permission", err, k)
	}
}

func TestCheck(t *testing.T) {
	key, path := appKey(t)
	for _, tc := range []struct {
		name    string
		opts    githubfake.Options
		extra   string
		app     bool
		token   string // default: the fake's
		want    []string
		wantErr connectors.ErrorKind
	}{
		{name: "pat admin:org", want: nil},
		{name: "pat read:org", opts: githubfake.Options{Scopes: []string{"read:org", "repo"}}, want: []string{"scope admin:org"}},
		{name: "pat without scopes", opts: githubfake.Options{Scopes: []string{}}, want: []string{"scope admin:org"}},
		{name: "unknown team", extra: "teams: [backend, nosuch]\n", want: []string{`team "nosuch"`}},
		{name: "child teams", extra: "teams: [backend, frontend]\n", want: []string{`managed team "backend" has child teams (backend-api)`}},
		{name: "app members write", app: true, opts: githubfake.Options{App: &githubfake.App{Members: "write"}}, want: nil},
		{name: "app members read", app: true, opts: githubfake.Options{App: &githubfake.App{Members: "read"}}, want: []string{"Members: read & write"}},
		{name: "app no members", app: true, opts: githubfake.Options{App: &githubfake.App{}}, want: []string{"Members: read & write"}},
		{name: "wrong token", token: "ghp_wrong", wantErr: connectors.Permission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Teams = suiteTeams
			if opts.App != nil {
				opts.App.ID, opts.App.InstallationID, opts.App.PublicKey = 4242, 77, &key.PublicKey
			}
			f := newFake(t, opts)
			if tc.name == "child teams" {
				f.AddChildTeam("backend-api", "backend")
			}
			s := setup{url: f.URL + "/", token: f.Token(), extra: tc.extra}
			if tc.token != "" {
				s.token = tc.token
			}
			if tc.app {
				s.settings = appSettings(f.URL+"/", path)
			}
			missing, err := open(t, s).Check(t.Context())
			if tc.wantErr != connectors.Unknown {
				if k := connectors.KindOf(err); k != tc.wantErr {
					t.Fatalf("Check: %v (kind %s), want kind %s", err, k, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if len(missing) != len(tc.want) {
				t.Fatalf("missing = %q, want %d items like %q", missing, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(missing[i], w) {
					t.Errorf("missing[%d] = %q, want it to mention %q", i, missing[i], w)
				}
			}
			if len(f.Writes()) != 0 {
				t.Errorf("Check wrote: %+v", f.Writes())
			}
		})
	}
}

func TestOpenSettings(t *testing.T) {
	for _, tc := range []struct {
		name, settings, want string
	}{
		{"no org", "token: env:GH_TOKEN\n", "org: required"},
		{"no credentials", "org: piedpiper\n", "token or app"},
		{"both", "org: piedpiper\ntoken: env:GH_TOKEN\napp: {app_id: 1, installation_id: 2, private_key: file:/x}\n", "only one"},
		{"inline token", "org: piedpiper\ntoken: ghp_abcdef\n", "secret reference"},
		{"unknown key", "org: piedpiper\ntoken: env:GH_TOKEN\ntokn: x\n", "tokn"},
		{"bad team", "org: piedpiper\ntoken: env:GH_TOKEN\nteams: [Back End]\n", "teams[0]"},
		{"no teams", "org: piedpiper\ntoken: env:GH_TOKEN\n", "teams: required"},
		{"all and some", "org: piedpiper\ntoken: env:GH_TOKEN\nteams: [\"*\", backend]\n", "cannot be combined"},
		{"bad url", "org: piedpiper\nteams: [\"*\"]\ntoken: env:GH_TOKEN\nbase_url: ftp://x/\n", "base_url"},
		{"bad timeout", "org: piedpiper\nteams: [\"*\"]\ntoken: env:GH_TOKEN\ntimeout: soon\n", `duration "soon"`},
		{"too concurrent", "org: piedpiper\nteams: [\"*\"]\ntoken: env:GH_TOKEN\nmax_concurrent_requests: 500\n", "max_concurrent_requests"},
		{"unset secret", "org: piedpiper\nteams: [\"*\"]\ntoken: env:NOPE\n", "env:NOPE is not set"},
		{"bad key", "org: piedpiper\nteams: [\"*\"]\napp: {app_id: 1, installation_id: 2, private_key: env:GH_TOKEN}\n", "private_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(t.Context(), connectors.Env{Name: "github", Settings: yamlSettings(tc.settings),
				Secret: secrets(map[string]string{"GH_TOKEN": "ghp_secret-value"})})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "ghp_secret-value") {
				t.Errorf("the error quotes the secret: %v", err)
			}
		})
	}
	c, err := Open(t.Context(), connectors.Env{Name: "gh", Settings: yamlSettings("org: piedpiper\ntoken: env:GH_TOKEN\nteams: [\"*\"]\n"),
		Secret: secrets(map[string]string{"GH_TOKEN": "x"})})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.(*Connector).cfg
	if cfg.BaseURL != "https://api.github.com/" || cfg.MaxConcurrentRequests != 8 || time.Duration(cfg.Timeout) != 30*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestCheckErrorsAreClassified(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams})
	c := open(t, setup{url: f.URL + "/", token: f.Token(), settings: fmt.Sprintf("org: hooli\ntoken: env:GH_TOKEN\nteams: [\"*\"]\nbase_url: %s/\n", f.URL)})
	_, err := c.Check(t.Context())
	var ce *connectors.Error
	if !errors.As(err, &ce) || ce.Kind != connectors.NotFound {
		t.Errorf("Check of an org the token cannot see: %v, want NotFound", err)
	}
}

// The org's daily invitation cap (422 "Over invitation rate limit") is a
// rate limit to wait out, not a refusal of the person.
func TestInvitationCapIsRateLimited(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, InvitationCap: 1})
	c := open(t, setup{url: f.URL + "/", token: f.Token()})
	ctx := t.Context()
	if err := c.Apply(ctx, act(connectors.CreateAccount, person(1), connectors.Entitlement{})); err != nil {
		t.Fatalf("first invitation: %v", err)
	}
	err := c.Apply(ctx, act(connectors.CreateAccount, person(2), connectors.Entitlement{}))
	if k := connectors.KindOf(err); k != connectors.RateLimited || connectors.RetryAfter(err) < time.Hour {
		t.Fatalf("over the cap: %v (kind %s, retry after %s), want RateLimited for an hour or more", err, k, connectors.RetryAfter(err))
	}
	if !strings.Contains(err.Error(), "Over invitation rate limit") {
		t.Errorf("the error does not carry GitHub's reason: %v", err)
	}
	if n := len(f.Invitations()); n != 1 {
		t.Errorf("%d invitations, want 1", n)
	}
}

// Without invite_by_email, a joiner without githubUsername is refused at
// once (terminal), with what to do, and nobody is invited.
func TestNoEmailInvitationByDefault(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams})
	c := open(t, setup{url: f.URL + "/", token: f.Token()})
	p := person(5)
	p.Attributes = nil
	err := c.Apply(t.Context(), act(connectors.CreateAccount, p, connectors.Entitlement{}))
	if connectors.KindOf(err) != connectors.Invalid || connectors.Retryable(err) || !strings.Contains(err.Error(), "githubUsername") {
		t.Fatalf("got %v (kind %s), want a terminal Invalid naming githubUsername", err, connectors.KindOf(err))
	}
	if n := len(f.Invitations()); n != 0 {
		t.Errorf("%d invitations sent", n)
	}
}

// A member who renames their login is followed by user id: the snapshot
// reports the new login as the same worker's account, and the leaver is
// removed under it (the old login answers 404, which must not pass for
// "already removed").
func TestRenamedLoginIsFollowed(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: true})
	c := open(t, setup{url: f.URL + "/", token: f.Token(), db: openDB(t)})
	ctx := t.Context()
	p := person(1)
	old := p.Attributes["githubUsername"]
	if err := c.Apply(ctx, act(connectors.CreateAccount, p, connectors.Entitlement{})); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, act(connectors.Grant, p, team("backend", ""))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Snapshot(ctx); err != nil { // learns the user id
		t.Fatal(err)
	}
	if err := f.RenameUser(old, old+"-renamed"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var acct *connectors.AccountState
	for i, a := range st.Accounts {
		if a.Worker == p.Worker {
			acct = &st.Accounts[i]
		}
	}
	if acct == nil || string(acct.ID) != old+"-renamed" || len(acct.Entitlements) != 1 {
		t.Fatalf("after the rename the worker's account is %+v, want %s-renamed with team/backend", acct, old)
	}
	leave := act(connectors.SuspendAccount, p, connectors.Entitlement{})
	leave.Account = acct.ID
	if err := c.Apply(ctx, leave); err != nil {
		t.Fatal(err)
	}
	if _, still := f.Members()[old+"-renamed"]; still {
		t.Errorf("the renamed leaver is still a member: %v", f.Members())
	}
	if _, still := f.TeamMembers("backend")[old+"-renamed"]; still {
		t.Errorf("the renamed leaver is still in team backend")
	}
}

// A linked member the member list leaves out (a page shifted during the
// read) is confirmed with GitHub, not reported as removed: a leaver must
// not look already gone. One who really left is reported suspended.
func TestUnlistedMemberIsConfirmed(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: true})
	c := open(t, setup{url: f.URL + "/", token: f.Token(), db: openDB(t)})
	ctx := t.Context()
	stay, gone := person(1), person(2)
	for _, p := range []connectors.Person{stay, gone} {
		if err := c.Apply(ctx, act(connectors.CreateAccount, p, connectors.Entitlement{})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	f.SkipInList(stay.Attributes["githubUsername"])
	f.RemoveMember(gone.Attributes["githubUsername"])
	st, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byWorker := map[connectors.WorkerID]connectors.AccountState{}
	for _, a := range st.Accounts {
		byWorker[a.Worker] = a
	}
	if a, ok := byWorker[stay.Worker]; !ok || a.Suspended || a.Pending {
		t.Errorf("the unlisted member is reported as %+v, want an active account", a)
	}
	if a, ok := byWorker[gone.Worker]; !ok || !a.Suspended {
		t.Errorf("the member who left is reported as %+v, want suspended", a)
	}
}

// A member removed between the connector's membership check and its team
// PUT: GitHub answers the PUT by inviting them back. The connector undoes
// that invitation and reports that there is no account.
func TestTeamGrantRaceWithRemoval(t *testing.T) {
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: true})
	p := person(3)
	login := p.Attributes["githubUsername"]
	target, _ := url.Parse(f.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/teams/backend/memberships/"+login) {
			f.RemoveMember(login) // an admin removes them just now
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	c := open(t, setup{url: front.URL + "/", token: f.Token()})
	ctx := t.Context()
	if err := c.Apply(ctx, act(connectors.CreateAccount, p, connectors.Entitlement{})); err != nil {
		t.Fatal(err)
	}
	err := c.Apply(ctx, act(connectors.Grant, p, team("backend", "")))
	if connectors.KindOf(err) != connectors.NotFound {
		t.Fatalf("grant racing a removal: %v (kind %s), want NotFound", err, connectors.KindOf(err))
	}
	for _, inv := range f.Invitations() {
		if strings.EqualFold(inv.Login, login) {
			t.Errorf("the removed member is invited back: %+v", inv)
		}
	}
	if _, pending := f.PendingTeamMembers("backend")[login]; pending {
		t.Error("the removed member is still pending in team backend")
	}
}
