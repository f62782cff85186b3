package github

import (
	"fmt"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/github/githubfake"
)

// benchOrg is an org of 1,000 members in 50 teams (each member in three
// teams, one in five of them as maintainer).
func benchOrg(b *testing.B) *githubfake.Server {
	b.Helper()
	f := newFake(b, githubfake.Options{RateLimit: 1 << 30, AnyUser: true})
	for i := range 50 {
		f.AddTeam(fmt.Sprintf("team-%02d", i))
	}
	for i := range 1000 {
		login := fmt.Sprintf("dev%04d", i)
		role := "member"
		if i%100 == 0 {
			role = "admin"
		}
		f.AddMember(login, role)
		for k, off := range []int{0, 7, 19} {
			tr := "member"
			if k == 0 && i%5 == 0 {
				tr = "maintainer"
			}
			f.AddTeamMember(fmt.Sprintf("team-%02d", (i+off)%50), login, tr)
		}
	}
	return f
}

func reportCalls(b *testing.B, f *githubfake.Server, before githubfake.Calls) {
	after := f.Calls()
	b.ReportMetric(float64(after.Total-before.Total)/float64(b.N), "calls/op")
	b.ReportMetric(float64(after.RateLimited-before.RateLimited)/float64(b.N), "ratelimited-calls/op")
}

// BenchmarkSnapshotNoChange reads an unchanged org of 1,000 members and 50
// teams: "first" with a new connector every time (a cold ETag cache, as
// the first snapshot after start), "second" with one connector whose
// cache is warm (every later snapshot).
func BenchmarkSnapshotNoChange(b *testing.B) {
	f := benchOrg(b)
	s := setup{url: f.URL + "/", token: f.Token()}
	check := func(st *connectors.State) {
		if len(st.Accounts) != 1000 {
			b.Fatalf("%d accounts, want 1000", len(st.Accounts))
		}
	}
	b.Run("first", func(b *testing.B) {
		before := f.Calls()
		for b.Loop() {
			st, err := open(b, s).Snapshot(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			check(st)
		}
		reportCalls(b, f, before)
	})
	b.Run("second", func(b *testing.B) {
		c := open(b, s)
		if _, err := c.Snapshot(b.Context()); err != nil {
			b.Fatal(err)
		}
		before := f.Calls()
		for b.Loop() {
			st, err := c.Snapshot(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			check(st)
		}
		reportCalls(b, f, before)
	})
}

// BenchmarkJoiner is one joiner's actions: create the account (invite by
// login) and grant three teams, with the link table in a bbolt file.
func BenchmarkJoiner(b *testing.B) {
	f := benchOrg(b)
	c := open(b, setup{url: f.URL + "/", token: f.Token(), db: openDB(b)})
	before := f.Calls()
	i := 0
	for b.Loop() {
		p := person(100000 + i)
		i++
		for _, a := range []connectors.Action{
			act(connectors.CreateAccount, p, connectors.Entitlement{}),
			act(connectors.Grant, p, team("team-01", "")),
			act(connectors.Grant, p, team("team-02", "")),
			act(connectors.Grant, p, team("team-03", "maintainer")),
		} {
			if err := c.Apply(b.Context(), a); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportCalls(b, f, before)
}
