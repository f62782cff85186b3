package slack

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/connectortest"
	"github.com/rosterhq/roster/connectors/slack/slackfake"
)

const prismSpec = "testdata/slack-web-iam-methods.prism.json"

// switchboard is the upstream Prism forwards to: a reverse proxy to the
// current fake, so one Prism process serves every subtest's fresh fake.
type switchboard struct {
	mu   sync.Mutex
	fake *slackfake.Server
}

func (s *switchboard) set(f *slackfake.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fake = f
}

func (s *switchboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.fake
	s.mu.Unlock()
	if f == nil {
		http.Error(w, "no fake", http.StatusBadGateway)
		return
	}
	u, _ := url.Parse(f.URL)
	httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
}

// prismed starts Prism in front of a switchboard. The Web API goes through
// Prism (api_url = proxy + "/": the spec's paths are "/users.list" and so
// on, and Prism forwards them to the upstream's "/api/…"); SCIM, which the
// spec does not describe, goes to the fake directly.
func prismed(t *testing.T) (*switchboard, string) {
	t.Helper()
	sw := &switchboard{}
	up := httptest.NewServer(sw)
	t.Cleanup(up.Close)
	return sw, connectortest.Prism(t, prismSpec, up.URL+"/api")
}

// TestPrism runs the conformance suite with every Web API request and
// answer checked against Slack's published OpenAPI description.
//
// The spec describes Slack's {"ok":false} answers under "default", but
// Slack sends them with HTTP 200, so Prism turns every one into a 500.
// Idempotent repeats of channel grants ("already_in_channel") therefore
// cannot pass through it: the suite runs with user groups (read, change,
// write: never an error answer), and TestPrismChannels does a channel
// round trip with no repeats.
func TestPrism(t *testing.T) {
	sw, proxy := prismed(t)
	connectortest.Run(t, func(t *testing.T) connectortest.Target {
		f := newFake(t, slackfake.Options{PageLimit: 50})
		sw.set(f)
		return connectortest.Target{
			Connector: connect(t, f, func(c *Config) {
				c.APIURL = proxy + "/"
				c.Channels = []string{"eng"} // snapshots read conversations.list and .members
			}),
			Grants:      []connectors.Entitlement{{Kind: KindUsergroup, Resource: "oncall"}},
			ManyMembers: 60,
		}
	})
}

func TestPrismChannels(t *testing.T) {
	sw, proxy := prismed(t)
	f := newFake(t, slackfake.Options{PageLimit: 2})
	sw.set(f)
	c := connect(t, f, func(c *Config) { c.APIURL = proxy + "/" })
	p, q := person(1), person(2)
	eng := ent("channel/eng")
	mustApply(t, c, act(connectors.CreateAccount, p, "", connectors.Entitlement{}))
	mustApply(t, c, act(connectors.CreateAccount, q, "", connectors.Entitlement{}))
	mustApply(t, c, act(connectors.Grant, q, "", eng))
	holds := func(after string, want ...connectors.Entitlement) connectors.AccountState {
		t.Helper()
		a, ok := accountOf(mustSnapshot(t, c), p.Worker)
		if !ok {
			t.Fatalf("after %s: no account", after)
		}
		if len(a.Entitlements) != len(want) || len(want) > 0 && !slices.Equal(a.Entitlements, want) {
			t.Fatalf("after %s: holds %v, want %v", after, a.Entitlements, want)
		}
		return a
	}
	holds("create")
	mustApply(t, c, act(connectors.Grant, p, "", eng))
	holds("grant", eng)
	mustApply(t, c, act(connectors.Revoke, p, "", eng))
	holds("revoke")
	mustApply(t, c, act(connectors.Grant, p, "", ent("channel/random")))
	holds("grant #random", ent("channel/random"))
	mustApply(t, c, act(connectors.SuspendAccount, p, "", connectors.Entitlement{}))
	if a := holds("suspend"); !a.Suspended {
		t.Fatal("after suspend: not suspended")
	}
	mustApply(t, c, act(connectors.RestoreAccount, p, "", connectors.Entitlement{}))
	if a := holds("restore"); a.Suspended {
		t.Fatal("after restore: suspended")
	}
	mustApply(t, c, act(connectors.Grant, p, "", eng))
	holds("grant after restore", eng)
	mustApply(t, c, act(connectors.DeleteAccount, p, "", connectors.Entitlement{}))
	if _, ok := accountOf(mustSnapshot(t, c), p.Worker); ok {
		t.Fatal("after delete: the account is still reported")
	}

	if missing, err := c.Check(t.Context()); err != nil || len(missing) != 0 {
		t.Errorf("Check through Prism = %q, %v", missing, err)
	}
	if _, err := c.AccountsWithoutMFA(t.Context()); err != nil {
		t.Errorf("AccountsWithoutMFA through Prism: %v", err)
	}
	if f.Calls().NextPages["conversations.members"] == 0 || f.Calls().NextPages["users.list"] == 0 {
		t.Errorf("no second page went through Prism: %v", f.Calls().NextPages)
	}
}
