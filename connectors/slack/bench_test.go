package slack

import (
	"fmt"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/slack/slackfake"
)

// benchWorkspace seeds a fake with 1,000 linked users, 20 user groups of
// 50 members and 30 channels (#general with everybody, the others with a
// third of the users each).
func benchWorkspace(b *testing.B, pageLimit int) (*slackfake.Server, *Connector) {
	b.Helper()
	f := slackfake.New(slackfake.Options{PageLimit: pageLimit})
	b.Cleanup(f.Close)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = f.AddUser(slackfake.User{
			UserName: fmt.Sprintf("user%04d", i), Email: fmt.Sprintf("user%04d@example.com", i),
			ExternalID: fmt.Sprintf("w-%04d", i), Active: true, Has2FA: i%5 != 0,
		})
	}
	for g := range 20 {
		handle := fmt.Sprintf("group-%02d", g)
		f.AddUsergroup(handle)
		var members []string
		for i := g; i < len(ids); i += 20 {
			members = append(members, ids[i])
		}
		f.SetUsergroupMembers(handle, members...)
	}
	f.AddChannel("general")
	f.AddChannelMembers("general", ids...)
	for ch := 1; ch < 30; ch++ {
		name := fmt.Sprintf("channel-%02d", ch)
		f.AddChannel(name)
		var members []string
		for i := ch % 3; i < len(ids); i += 3 {
			members = append(members, ids[i])
		}
		f.AddChannelMembers(name, members...)
	}
	c := connect(b, f, func(c *Config) { c.Channels = []string{All} })
	return f, c
}

func report(b *testing.B, f *slackfake.Server) {
	calls := f.Calls()
	n := float64(b.N)
	b.ReportMetric(float64(calls.Total)/n, "calls/op")
	b.ReportMetric(float64(calls.Limited)/n, "ratelimited-calls/op")
	b.ReportMetric(float64(calls.ByTier["tier2"])/n, "tier2-calls/op")
	b.ReportMetric(float64(calls.ByTier["scim"])/n, "scim-calls/op")
}

// BenchmarkSnapshot reads an unchanged workspace: 1,000 users, 20 user
// groups, 30 channels. pages=1000 is Slack's own page cap; pages=200 shows
// the cost when Slack serves smaller pages.
func BenchmarkSnapshot(b *testing.B) {
	for _, pages := range []int{1000, 200} {
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			f, c := benchWorkspace(b, pages)
			st := mustSnapshot(b, c)
			if len(st.Accounts) != 1001 {
				b.Fatalf("snapshot has %d accounts, want 1001", len(st.Accounts))
			}
			f.ResetCalls()
			for b.Loop() {
				mustSnapshot(b, c)
			}
			report(b, f)
		})
	}
}

// BenchmarkJoiner applies one joiner's actions as a plan carries them (no
// Slack user id known yet): create the account, then grant two channels
// and one user group. The connector's caches are warm from a snapshot, as
// after the engine's reconcile.
func BenchmarkJoiner(b *testing.B) {
	f, c := benchWorkspace(b, 1000)
	mustSnapshot(b, c)
	f.ResetCalls()
	i := 0
	for b.Loop() {
		p := person(100000 + i)
		i++
		mustApply(b, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
		for _, e := range []string{"channel/general", "channel/channel-07", "usergroup/group-03"} {
			mustApply(b, c, act(connectors.Grant, p, "", ent(e)))
		}
	}
	report(b, f)
}
