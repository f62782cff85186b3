package slack

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/slack/slackfake"
)

func grantGroup(c *Connector, id, handle string) error {
	return c.Apply(context.Background(), connectors.Action{Kind: connectors.Grant, Account: connectors.AccountID(id),
		Person:      connectors.Person{Worker: connectors.WorkerID("w-" + id), Email: id + "@example.com"},
		Entitlement: connectors.Entitlement{Kind: KindUsergroup, Resource: handle}})
}

// Two concurrent grants to a group believed disabled: the second must see
// that the first enabled it, and add to its list instead of replacing it.
func TestConcurrentGrantsToDisabledGroup(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	a := f.AddUser(slackfake.User{Email: "a@example.com", Active: true})
	b := f.AddUser(slackfake.User{Email: "b@example.com", Active: true})
	old := f.AddUser(slackfake.User{Email: "old@example.com", Active: true})
	f.SetUsergroupMembers("oncall", old)
	f.SetUsergroupDisabled("oncall", true)
	c := connect(t, f, nil)
	mustSnapshot(t, c) // the cache now says: disabled
	var wg sync.WaitGroup
	for _, id := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := grantGroup(c, id, "oncall"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := f.UsergroupMembers("oncall")
	slices.Sort(got)
	want := []string{a, b}
	slices.Sort(want)
	if !slices.Equal(got, want) || f.UsergroupDisabled("oncall") {
		t.Errorf("@oncall = %v (disabled %v), want exactly %v, enabled", got, f.UsergroupDisabled("oncall"), want)
	}
}

// A group re-enabled and filled by hand after the last read: a grant adds
// to it and does not replace its members.
func TestGrantToGroupEnabledByHand(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	a := f.AddUser(slackfake.User{Email: "a@example.com", Active: true})
	x := f.AddUser(slackfake.User{Email: "x@example.com", Active: true})
	y := f.AddUser(slackfake.User{Email: "y@example.com", Active: true})
	f.SetUsergroupDisabled("oncall", true)
	c := connect(t, f, func(cfg *Config) { cfg.Usergroups = []string{"oncall"} })
	mustSnapshot(t, c)
	f.SetUsergroupDisabled("oncall", false)
	f.SetUsergroupMembers("oncall", x, y)
	if err := grantGroup(c, a, "oncall"); err != nil {
		t.Fatal(err)
	}
	if got := f.UsergroupMembers("oncall"); len(got) != 3 || !slices.Contains(got, x) || !slices.Contains(got, y) || !slices.Contains(got, a) {
		t.Errorf("@oncall = %v, want %s, %s and %s", got, x, y, a)
	}
}

// Two people whose user names collide: the second gets name.2, not a
// permanent Conflict.
func TestUserNameTaken(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	c := connect(t, f, nil)
	first, second := person(1), person(2)
	second.UserName = first.UserName
	mustApply(t, c, act(connectors.CreateAccount, first, "", connectors.Entitlement{}))
	mustApply(t, c, act(connectors.CreateAccount, second, "", connectors.Entitlement{}))
	u, ok := f.UserByEmail(second.Email)
	if !ok || u.UserName != first.UserName+".2" || u.ExternalID != string(second.Worker) {
		t.Errorf("second user %+v, want user name %s.2 linked to %s", u, first.UserName, second.Worker)
	}
	if got := numberedUserName("abcdefghijklmnopqrstu", 3); got != "abcdefghijklmnopqrs.3" {
		t.Errorf("numberedUserName of 21 characters = %q", got)
	}
}
