package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	gh "github.com/google/go-github/v60/github"
	"github.com/rosterhq/roster/connectors"
)

// pageSize is GitHub's largest page.
const pageSize = 100

// listAll follows a list's pages.
func listAll[T any](fetch func(opt gh.ListOptions) ([]T, *gh.Response, error)) ([]T, error) {
	opt := gh.ListOptions{PerPage: pageSize}
	var all []T
	for {
		items, resp, err := fetch(opt)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if resp == nil || resp.NextPage == 0 {
			return all, nil
		}
		opt.Page = resp.NextPage
	}
}

// parallel runs the tasks, at most n at a time, and returns the first
// error; the others see a cancelled context once one failed.
func parallel(ctx context.Context, n int, tasks []func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(n, 1))
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, task := range tasks {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := task(ctx); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// orgView is what one snapshot read from GitHub.
type orgView struct {
	members []string         // logins, as GitHub spells them
	ids     map[int64]string // user id → login, for members
	admins  map[string]bool  // lower-cased logins
	invites []*gh.Invitation
	// teams: lower-cased login → managed team memberships
	teams map[string][]connectors.Entitlement
}

// Snapshot reads the org: members with their roles, pending invitations,
// and the memberships of the managed teams; it links what it can through
// the link table. Accounts are ordered by ID.
func (c *Connector) Snapshot(ctx context.Context) (*connectors.State, error) {
	op := fmt.Sprintf("github %s: snapshot", c.name)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	v, err := c.read(ctx, op)
	if err != nil {
		return nil, err
	}
	var links []*link
	if err := c.links.view(func(tx linkTx) error {
		return tx.all(func(l *link) error { links = append(links, l); return nil })
	}); err != nil {
		return nil, fmt.Errorf("%s: read links: %w", op, err)
	}
	st, changed, err := c.assemble(ctx, op, v, links)
	if err != nil {
		return nil, err
	}
	if err := c.saveObserved(changed); err != nil {
		return nil, fmt.Errorf("%s: store links: %w", op, err)
	}
	return st, nil
}

// read fetches everything a snapshot needs from GitHub.
func (c *Connector) read(ctx context.Context, op string) (*orgView, error) {
	org := c.cfg.Org
	v := &orgView{ids: map[int64]string{}, admins: map[string]bool{}, teams: map[string][]connectors.Entitlement{}}
	var (
		slugs []string
		mu    sync.Mutex
	)
	err := parallel(ctx, c.cfg.MaxConcurrentRequests, []func(context.Context) error{
		func(ctx context.Context) error {
			users, err := listAll(func(opt gh.ListOptions) ([]*gh.User, *gh.Response, error) {
				return c.gh.Organizations.ListMembers(ctx, org, &gh.ListMembersOptions{ListOptions: opt})
			})
			if err != nil {
				return classify(op+": list members", nil, err)
			}
			for _, u := range users {
				v.members = append(v.members, u.GetLogin())
				v.ids[u.GetID()] = u.GetLogin()
			}
			return nil
		},
		func(ctx context.Context) error {
			users, err := listAll(func(opt gh.ListOptions) ([]*gh.User, *gh.Response, error) {
				return c.gh.Organizations.ListMembers(ctx, org, &gh.ListMembersOptions{Role: "admin", ListOptions: opt})
			})
			if err != nil {
				return classify(op+": list owners", nil, err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, u := range users {
				v.admins[strings.ToLower(u.GetLogin())] = true
			}
			return nil
		},
		func(ctx context.Context) error {
			invs, err := c.pendingInvitations(ctx)
			if err != nil {
				return classify(op+": list invitations", nil, err)
			}
			v.invites = invs
			return nil
		},
		func(ctx context.Context) error {
			if c.managed != nil {
				slugs = c.managedList()
				return nil
			}
			teams, err := c.allTeams(ctx)
			if err != nil {
				return classify(op+": list teams", nil, err)
			}
			for _, t := range teams {
				slugs = append(slugs, t.GetSlug())
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}

	var tasks []func(context.Context) error
	for _, slug := range slugs {
		for _, role := range []string{roleMaintainer, roleMember} {
			tasks = append(tasks, func(ctx context.Context) error {
				users, err := listAll(func(opt gh.ListOptions) ([]*gh.User, *gh.Response, error) {
					return c.gh.Teams.ListTeamMembersBySlug(ctx, org, slug, &gh.TeamListTeamMembersOptions{Role: role, ListOptions: opt})
				})
				if status(err) == http.StatusNotFound && c.managed != nil {
					// A configured team that does not exist (any more):
					// nothing is managed in it. Check reports it.
					if role == roleMaintainer {
						c.log.Warn("github: a team listed in settings teams does not exist", "team", slug)
					}
					return nil
				}
				if status(err) == http.StatusNotFound {
					return nil // deleted between the two reads
				}
				if err != nil {
					return classify(fmt.Sprintf("%s: list %ss of team %s", op, role, slug), nil, err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, u := range users {
					k := strings.ToLower(u.GetLogin())
					v.teams[k] = append(v.teams[k], connectors.Entitlement{Kind: kindTeam, Resource: slug, Role: role})
				}
				return nil
			})
		}
	}
	if err := parallel(ctx, c.cfg.MaxConcurrentRequests, tasks); err != nil {
		return nil, err
	}
	return v, nil
}

// pendingInvitations lists the org's pending invitations.
func (c *Connector) pendingInvitations(ctx context.Context) ([]*gh.Invitation, error) {
	return listAll(func(opt gh.ListOptions) ([]*gh.Invitation, *gh.Response, error) {
		return c.gh.Organizations.ListPendingOrgInvitations(ctx, c.cfg.Org, &opt)
	})
}

// failedInvitations lists the ids of the org's failed (expired) invitations.
func (c *Connector) failedInvitations(ctx context.Context) (map[int64]bool, error) {
	invs, err := listAll(func(opt gh.ListOptions) ([]*gh.Invitation, *gh.Response, error) {
		return c.gh.Organizations.ListFailedOrgInvitations(ctx, c.cfg.Org, &opt)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(invs))
	for _, inv := range invs {
		out[inv.GetID()] = true
	}
	return out, nil
}

func (c *Connector) allTeams(ctx context.Context) ([]*gh.Team, error) {
	return listAll(func(opt gh.ListOptions) ([]*gh.Team, *gh.Response, error) {
		return c.gh.Teams.ListTeams(ctx, c.cfg.Org, &opt)
	})
}

// observed is a link change a snapshot saw on GitHub, stored only if the
// link did not change meanwhile.
type observed struct {
	oldKey string
	seen   *link // as read
	next   *link
}

// assemble builds the state from what GitHub said and the links, and the
// link changes that follow from it.
func (c *Connector) assemble(ctx context.Context, op string, v *orgView, links []*link) (*connectors.State, []observed, error) {
	byKey := make(map[string]*link, len(links))
	byInvitation := map[int64]*link{}
	for _, l := range links {
		byKey[l.key()] = l
		if l.Invitation != 0 {
			byInvitation[l.Invitation] = l
		}
	}
	used := map[*link]bool{}
	var changed []observed
	change := func(l *link, mutate func(n *link)) {
		n := l.clone()
		mutate(n)
		n.Updated = c.now().UTC()
		changed = append(changed, observed{oldKey: l.key(), seen: l, next: n})
	}
	st := &connectors.State{App: c.name, Accounts: make([]connectors.AccountState, 0, len(v.members)+len(v.invites))}
	memberSet := make(map[string]bool, len(v.members))
	idOf := make(map[string]int64, len(v.ids))
	for id, login := range v.ids {
		idOf[strings.ToLower(login)] = id
	}
	// A member renamed on GitHub keeps their user id: follow the link to
	// the new login, so the leaver is removed under it (the old login now
	// answers 404, which would look like "already removed").
	for _, l := range links {
		if l.UserID == 0 || l.Login == "" {
			continue
		}
		now, ok := v.ids[l.UserID]
		if !ok || strings.EqualFold(now, l.Login) || byKey[strings.ToLower(now)] != nil {
			continue
		}
		byKey[strings.ToLower(now)] = l
		delete(byKey, l.key())
	}

	for _, login := range v.members {
		k := strings.ToLower(login)
		memberSet[k] = true
		a := connectors.AccountState{ID: connectors.AccountID(login), UserName: login, Role: roleMember}
		if v.admins[k] {
			a.Role = roleAdmin
		}
		a.Entitlements = slices.Clone(v.teams[k])
		if l := byKey[k]; l != nil {
			used[l] = true
			a.Worker, a.Email = l.Worker, l.Email
			id := idOf[k]
			if l.State != stateMember || l.Invitation != 0 || len(l.Teams) > 0 || l.Role != a.Role || l.Login != login || l.UserID != id {
				role := a.Role
				change(l, func(n *link) {
					n.State, n.Invitation, n.Teams, n.Role, n.Login, n.UserID = stateMember, 0, nil, role, login, id
				})
			}
		}
		connectors.SortEntitlements(a.Entitlements)
		st.Accounts = append(st.Accounts, a)
	}

	for _, inv := range v.invites {
		var (
			a connectors.AccountState
			l *link
		)
		if login := inv.GetLogin(); login != "" {
			if memberSet[strings.ToLower(login)] {
				continue
			}
			a.ID, a.UserName = connectors.AccountID(login), login
			l = byKey[strings.ToLower(login)]
		} else {
			a.ID = invitationAccount(inv.GetID())
			l = byKey[string(a.ID)]
		}
		if l == nil {
			l = byInvitation[inv.GetID()]
		}
		if l != nil && used[l] {
			l = nil
		}
		a.Pending = true
		a.Email = inv.GetEmail()
		a.Role = roleMember
		if inv.GetRole() == "admin" {
			a.Role = roleAdmin
		}
		if l != nil {
			used[l] = true
			a.Worker = l.Worker
			if a.Email == "" {
				a.Email = l.Email
			}
			if inv.GetLogin() == "" && l.Login != "" {
				a.ID = connectors.AccountID(l.Login)
			}
			for slug, role := range l.Teams {
				if c.teamManaged(slug) {
					a.Entitlements = append(a.Entitlements, connectors.Entitlement{Kind: kindTeam, Resource: slug, Role: role})
				}
			}
			if l.State != stateInvited || l.Invitation != inv.GetID() {
				id := inv.GetID()
				change(l, func(n *link) { n.State, n.Invitation = stateInvited, id })
			}
		}
		connectors.SortEntitlements(a.Entitlements)
		st.Accounts = append(st.Accounts, a)
	}

	// Links GitHub shows nothing for.
	var failed map[int64]bool
	for _, l := range links {
		if used[l] {
			continue
		}
		gone := connectors.AccountState{ID: l.accountID(), Worker: l.Worker, Email: l.Email, UserName: l.Login, Role: l.Role}
		switch l.State {
		case stateMember:
			// Roster knows them as a member but the list did not show
			// them: ask GitHub, rather than report a member (a leaver,
			// maybe) as already removed because a page shifted while
			// the list was read.
			if l.Login != "" {
				m, err := c.membership(ctx, op, l.Login)
				if err != nil {
					return nil, nil, err
				}
				if m.state == "active" || m.state == "pending" {
					gone.ID, gone.UserName, gone.Role, gone.Pending = connectors.AccountID(m.login), m.login, m.role, m.state == "pending"
					st.Accounts = append(st.Accounts, gone)
					continue
				}
			}
			// Left the org some other way: an account that can be
			// restored.
			change(l, func(n *link) { n.State = stateRemoved })
			gone.Suspended = true
			st.Accounts = append(st.Accounts, gone)
		case stateRemoved:
			// Removed by Roster: an account that can be restored.
			gone.Suspended = true
			st.Accounts = append(st.Accounts, gone)
		case stateAccepted:
			st.Accounts = append(st.Accounts, gone)
		case stateInvited:
			if l.Login != "" || l.Invitation == 0 {
				// An invitation by login that expired or was cancelled
				// outside Roster: no account; CreateAccount invites again.
				continue
			}
			if failed == nil {
				f, err := c.failedInvitations(ctx)
				if err != nil {
					return nil, nil, classify(op+": list failed invitations", nil, err)
				}
				failed = f
			}
			if failed[l.Invitation] {
				change(l, func(n *link) { n.State = stateExpired })
				continue
			}
			change(l, func(n *link) { n.State, n.Teams = stateAccepted, nil })
			st.Accounts = append(st.Accounts, gone)
		}
	}
	sort.SliceStable(st.Accounts, func(i, j int) bool { return st.Accounts[i].ID < st.Accounts[j].ID })
	// Two accounts with one id cannot come from GitHub; a link that
	// disagrees with it (a login reused) gives way.
	st.Accounts = slices.CompactFunc(st.Accounts, func(a, b connectors.AccountState) bool { return a.ID == b.ID })
	return st, changed, nil
}

// saveObserved stores the link changes a snapshot saw, skipping links an
// Apply changed in the meantime.
func (c *Connector) saveObserved(changed []observed) error {
	if len(changed) == 0 {
		return nil
	}
	return c.links.update(func(tx linkTx) error {
		for _, ch := range changed {
			cur, err := tx.get(ch.oldKey)
			if err != nil {
				return err
			}
			if cur == nil || !cur.Updated.Equal(ch.seen.Updated) {
				continue
			}
			if err := tx.put(ch.oldKey, ch.next); err != nil {
				return err
			}
		}
		return nil
	})
}

// errNoAccount is the cause of NotFound errors for a person with no
// account.
var errNoAccount = errors.New("no GitHub account (org membership or invitation) for this person")
