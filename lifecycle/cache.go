package lifecycle

import (
	"slices"
	"strings"
	"sync"

	"github.com/rosterhq/roster/connectors"
)

// stateCache is each app's last known state: the last snapshot, with
// every successful action applied on top. The server plans one worker at
// a time against it, so an HR change costs no API call to read the apps;
// the periodic full reconcile replaces it with fresh snapshots. It is off
// (and empty) until the server enables it, so a CLI run keeps no copy.
type stateCache struct {
	mu   sync.Mutex
	on   bool
	apps map[string]*cachedApp
}

type cachedApp struct {
	accounts []connectors.AccountState
	ix       *appIndex // the planner's account index, by worker and e-mail
}

func (c *stateCache) enable() {
	c.mu.Lock()
	c.on = true
	c.mu.Unlock()
}

// refresh replaces the cached state of every app in states.
func (c *stateCache) refresh(states map[string]*connectors.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return
	}
	if c.apps == nil {
		c.apps = map[string]*cachedApp{}
	}
	for app, st := range states {
		ca := &cachedApp{accounts: make([]connectors.AccountState, len(st.Accounts))}
		for i, a := range st.Accounts {
			ca.accounts[i] = copyAccount(a)
		}
		ca.reindex()
		c.apps[app] = ca
	}
}

func copyAccount(a connectors.AccountState) connectors.AccountState {
	a.Entitlements = slices.Clone(a.Entitlements)
	return a
}

func (ca *cachedApp) reindex() {
	ca.ix = indexState(&connectors.State{Accounts: ca.accounts})
}

func (ca *cachedApp) find(p *connectors.Person) int { return ca.ix.find(p) }

// apply records the effect of a successful action.
func (c *stateCache) apply(a connectors.Action) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ca := c.apps[a.App]
	if !c.on || ca == nil {
		return
	}
	i := ca.find(&a.Person)
	switch a.Kind {
	case connectors.CreateAccount:
		if i < 0 {
			ca.accounts = append(ca.accounts, connectors.AccountState{Worker: a.Person.Worker, Email: a.Person.Email,
				UserName: a.Person.UserName, Role: a.Entitlement.Role})
			ca.reindex()
		}
		return
	case connectors.DeleteAccount:
		if i >= 0 {
			ca.accounts = slices.Delete(ca.accounts, i, i+1)
			ca.reindex()
		}
		return
	}
	if i < 0 {
		return
	}
	acct := &ca.accounts[i]
	switch a.Kind {
	case connectors.SuspendAccount:
		acct.Suspended = true
	case connectors.RestoreAccount:
		acct.Suspended = false
	case connectors.Grant:
		if a.Entitlement.IsAccount() {
			acct.Role = a.Entitlement.Role
			return
		}
		k := a.Entitlement.Key()
		acct.Entitlements = slices.DeleteFunc(acct.Entitlements, func(e connectors.Entitlement) bool { return e.Key() == k })
		acct.Entitlements = append(acct.Entitlements, a.Entitlement)
		connectors.SortEntitlements(acct.Entitlements)
	case connectors.Revoke:
		k := a.Entitlement.Key()
		acct.Entitlements = slices.DeleteFunc(acct.Entitlements, func(e connectors.Entitlement) bool { return e.Key() == k })
	}
}

// statesFor returns, per cached app, a state holding copies of the
// accounts of the given people only.
func (c *stateCache) statesFor(people []connectors.Person) map[string]*connectors.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*connectors.State, len(c.apps))
	for app, ca := range c.apps {
		st := &connectors.State{App: app}
		seen := map[int]bool{}
		for i := range people {
			if j := ca.find(&people[i]); j >= 0 && !seen[j] {
				seen[j] = true
				st.Accounts = append(st.Accounts, copyAccount(ca.accounts[j]))
			}
		}
		slices.SortFunc(st.Accounts, func(a, b connectors.AccountState) int { return strings.Compare(string(a.ID), string(b.ID)) })
		out[app] = st
	}
	return out
}

// known reports whether app has a cached state.
func (c *stateCache) known(app string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ca, ok := c.apps[app]
	if !ok {
		return 0, false
	}
	return len(ca.accounts), true
}
