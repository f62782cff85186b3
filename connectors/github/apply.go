package github

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v60/github"
	"github.com/rosterhq/roster/connectors"
)

// Apply carries out one action idempotently; see the package doc for what
// each kind does on GitHub.
func (c *Connector) Apply(ctx context.Context, act connectors.Action) error {
	act.App = c.name
	op := act.String()
	if err := c.check(act, op); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	t, err := c.resolve(act, op)
	if err != nil {
		return err
	}
	switch act.Kind {
	case connectors.CreateAccount:
		return c.create(ctx, op, act, t)
	case connectors.Grant:
		if act.Entitlement.IsAccount() {
			return c.setRole(ctx, op, act, t)
		}
		return c.grantTeam(ctx, op, act, t)
	case connectors.Revoke:
		return c.revokeTeam(ctx, op, act, t)
	case connectors.SuspendAccount:
		return c.remove(ctx, op, act, t, false)
	case connectors.RestoreAccount:
		return c.restore(ctx, op, act, t)
	case connectors.DeleteAccount:
		return c.remove(ctx, op, act, t, true)
	}
	return connectors.Errorf(connectors.Invalid, op, "unknown action kind %q", act.Kind)
}

// check rejects, before any I/O, an action this connector cannot take.
func (c *Connector) check(act connectors.Action, op string) error {
	invalid := func(format string, args ...any) error {
		return connectors.Errorf(connectors.Invalid, op, format, args...)
	}
	p := act.Person
	if login := strings.TrimSpace(p.Attributes[attrUsername]); login != "" && !orgName.MatchString(login) {
		return invalid("githubUsername %q is not a GitHub login", login)
	}
	if act.Account == "" && p.Worker == "" && p.Email == "" && p.Attributes[attrUsername] == "" {
		return invalid("no account, worker id, e-mail or githubUsername to find the person by")
	}
	e := act.Entitlement
	accountRole := func(role string) error {
		if role != "" && role != roleMember && role != roleAdmin {
			return invalid("no account role %q (roles: member, admin)", role)
		}
		return nil
	}
	switch act.Kind {
	case connectors.CreateAccount:
		if e.Kind != "" && !e.IsAccount() {
			return invalid("create_account carries entitlement %q; only an account role may come with it", e)
		}
		return accountRole(e.Role)
	case connectors.Grant, connectors.Revoke:
		if e.IsAccount() {
			if act.Kind == connectors.Revoke {
				return invalid("cannot revoke the account itself; use delete_account")
			}
			return accountRole(e.Role)
		}
		if e.Kind != kindTeam {
			return invalid("kind %q is not offered by GitHub (offered: team)", e.Kind)
		}
		if !teamSlug.MatchString(e.Resource) {
			return invalid("%q is not a team slug (lower-case, as in the team's URL)", e.Resource)
		}
		if act.Kind == connectors.Grant && e.Role != "" && e.Role != roleMember && e.Role != roleMaintainer {
			return invalid("kind team has no role %q (roles: member, maintainer)", e.Role)
		}
		if !c.teamManaged(e.Resource) {
			return invalid("team %q is not managed by this instance (settings teams: %s)", e.Resource, strings.Join(c.managedList(), ", "))
		}
		return nil
	case connectors.SuspendAccount, connectors.RestoreAccount, connectors.DeleteAccount:
		return nil
	case connectors.TransferData:
		return invalid("GitHub has no data to transfer: repositories belong to the org")
	}
	return invalid("unknown action kind %q", act.Kind)
}

// target is the person an action is about, as far as Roster knows them.
type target struct {
	// login is the GitHub login, "" when only an e-mail invitation is
	// known.
	login string
	// link is the stored link, nil when none; oldKey its key.
	link   *link
	oldKey string
}

// resolve finds the login and link of act's person. The account the
// planner matched (act.Account) comes first, then githubUsername from HR,
// then the link found by worker id.
func (c *Connector) resolve(act connectors.Action, op string) (target, error) {
	var t target
	attr := strings.TrimSpace(act.Person.Attributes[attrUsername])
	err := c.links.view(func(tx linkTx) error {
		var err error
		if act.Account != "" {
			if t.link, err = tx.get(accountKey(act.Account)); err != nil || t.link != nil {
				return err
			}
		}
		if attr != "" {
			if t.link, err = tx.get(strings.ToLower(attr)); err != nil || t.link != nil {
				return err
			}
		}
		if act.Person.Worker != "" {
			t.link, err = tx.byWorker(act.Person.Worker)
		}
		return err
	})
	if err != nil {
		return t, fmt.Errorf("%s: read links: %w", op, err)
	}
	switch {
	case act.Account != "" && !isInvitationAccount(act.Account):
		t.login = string(act.Account)
	case attr != "":
		t.login = attr
	case t.link != nil:
		t.login = t.link.Login
	}
	if l := t.link; l != nil {
		t.oldKey = l.key()
		if l.Login != "" && t.login != "" && !strings.EqualFold(l.Login, t.login) {
			// The worker's link is for another login (HR changed the
			// username): this action is about t.login only.
			t.link, t.oldKey = nil, ""
		} else if l.Worker != "" && act.Person.Worker != "" && l.Worker != act.Person.Worker {
			return t, connectors.Errorf(connectors.Conflict, op, "GitHub account %s is linked to worker %s, not %s", l.accountID(), l.Worker, act.Person.Worker)
		}
	}
	return t, nil
}

// next starts the link for act's person from t's.
func (t *target) next(act connectors.Action) *link {
	var n *link
	if t.link != nil {
		n = t.link.clone()
	} else {
		n = &link{}
	}
	if act.Person.Worker != "" {
		n.Worker = act.Person.Worker
	}
	if act.Person.Email != "" {
		n.Email = act.Person.Email
	}
	return n
}

// save stores n in place of t's link, unless nothing changed.
func (c *Connector) save(op string, t *target, n *link) error {
	if t.link != nil && sameLink(t.link, n) {
		return nil
	}
	n.Updated = c.now().UTC()
	if err := c.links.update(func(tx linkTx) error { return tx.put(t.oldKey, n) }); err != nil {
		return fmt.Errorf("%s: store link: %w", op, err)
	}
	t.link, t.oldKey = n, n.key()
	return nil
}

// forget deletes t's link.
func (c *Connector) forget(op string, t *target) error {
	if t.link == nil {
		return nil
	}
	if err := c.links.update(func(tx linkTx) error { return tx.del(t.oldKey) }); err != nil {
		return fmt.Errorf("%s: delete link: %w", op, err)
	}
	t.link, t.oldKey = nil, ""
	return nil
}

func sameLink(a, b *link) bool {
	return a.Worker == b.Worker && a.Email == b.Email && a.Login == b.Login && a.Invitation == b.Invitation &&
		a.State == b.State && a.Role == b.Role && maps.Equal(a.Teams, b.Teams)
}

// membership is a login's org membership.
type membership struct {
	state string // "active", "pending" or "" (none)
	role  string // "admin" or "member"
	login string // as GitHub spells it
}

func (c *Connector) membership(ctx context.Context, op, login string) (membership, error) {
	m, resp, err := c.gh.Organizations.GetOrgMembership(ctx, login, c.cfg.Org)
	if status(err) == http.StatusNotFound {
		return membership{login: login}, nil
	}
	if err != nil {
		return membership{}, classify(op+": read membership", resp, err)
	}
	out := membership{state: m.GetState(), role: roleMember, login: m.GetUser().GetLogin()}
	if m.GetRole() == "admin" {
		out.role = roleAdmin
	}
	if out.login == "" {
		out.login = login
	}
	return out, nil
}

// userID looks a login up: a login GitHub does not know is a terminal
// NotFound.
func (c *Connector) userID(ctx context.Context, op, login string) (int64, string, error) {
	u, resp, err := c.gh.Users.Get(ctx, login)
	if status(err) == http.StatusNotFound {
		return 0, "", connectors.Errorf(connectors.NotFound, op, "GitHub has no user %q (check githubUsername in HR)", login)
	}
	if err != nil {
		return 0, "", classify(op+": look up user", resp, err)
	}
	return u.GetID(), u.GetLogin(), nil
}

func invitationRole(role string) string {
	if role == roleAdmin {
		return "admin"
	}
	return "direct_member"
}

// invite sends an invitation; ok is false when GitHub answered 422 (an
// invitation or membership exists already, or the role was refused), for
// the caller to look again.
func (c *Connector) invite(ctx context.Context, op string, opts *gh.CreateOrgInvitationOptions) (inv *gh.Invitation, ok bool, err error) {
	inv, resp, err := c.gh.Organizations.CreateOrgInvitation(ctx, c.cfg.Org, opts)
	if status(err) == http.StatusUnprocessableEntity {
		var er *gh.ErrorResponse
		if errors.As(err, &er) && strings.Contains(strings.ToLower(ghMessage(er)), "rate limit") {
			// The org's daily invitation cap: not a refusal of this
			// person; try again later.
			return nil, false, &connectors.Error{Kind: connectors.RateLimited, Op: op + ": invite", RetryAfter: invitationCapWait,
				Err: fmt.Errorf("GitHub: %s (the organisation's daily invitation limit)", ghMessage(er))}
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify(op+": invite", resp, err)
	}
	return inv, true, nil
}

// findInvitation looks for a pending invitation by id or e-mail.
func (c *Connector) findInvitation(ctx context.Context, op string, id int64, email string) (*gh.Invitation, error) {
	invs, err := c.pendingInvitations(ctx)
	if err != nil {
		return nil, classify(op+": list invitations", nil, err)
	}
	for _, inv := range invs {
		if id != 0 && inv.GetID() == id || email != "" && strings.EqualFold(inv.GetEmail(), email) {
			return inv, nil
		}
	}
	return nil, nil
}

// cancelInvitation is DELETE /orgs/{org}/invitations/{id} (go-github v60
// has no method for it).
func (c *Connector) cancelInvitation(ctx context.Context, id int64) (*gh.Response, error) {
	req, err := c.gh.NewRequest(http.MethodDelete, fmt.Sprintf("orgs/%s/invitations/%d", url.PathEscape(c.cfg.Org), id), nil)
	if err != nil {
		return nil, err
	}
	return c.gh.Do(ctx, req, nil)
}

// acceptedConflict is the error for an accepted e-mail invitation whose
// login GitHub does not name.
func acceptedConflict(op string, l *link) error {
	return connectors.Errorf(connectors.Conflict, op,
		"the invitation sent to %s was accepted, but GitHub does not say by which login; add the worker's githubUsername in HR so Roster can link the account (the login shows up as an orphan meanwhile)", l.Email)
}

func (c *Connector) create(ctx context.Context, op string, act connectors.Action, t target) error {
	role := act.Entitlement.Role
	n := t.next(act)
	if t.login != "" {
		m, err := c.membership(ctx, op, t.login)
		if err != nil {
			return err
		}
		switch m.state {
		case "active":
			if role != "" && m.role != role {
				if _, resp, err := c.gh.Organizations.EditOrgMembership(ctx, m.login, c.cfg.Org, &gh.Membership{Role: gh.String(role)}); err != nil {
					return classify(op+": set org role", resp, err)
				}
				m.role = role
			}
			n.Login, n.State, n.Role, n.Invitation, n.Teams = m.login, stateMember, m.role, 0, nil
			return c.save(op, &t, n)
		case "pending":
			n.Login, n.State, n.Role = m.login, stateInvited, m.role
			return c.save(op, &t, n)
		}
		if role == "" {
			role = roleMember
		}
		id, login, err := c.userID(ctx, op, t.login)
		if err != nil {
			return err
		}
		inv, ok, err := c.invite(ctx, op, &gh.CreateOrgInvitationOptions{InviteeID: gh.Int64(id), Role: gh.String(invitationRole(role))})
		if err != nil {
			return err
		}
		if !ok {
			// Invited or joined meanwhile (a retry of a lost answer)?
			m, err := c.membership(ctx, op, login)
			if err != nil {
				return err
			}
			if m.state == "" {
				return connectors.Errorf(connectors.Invalid, op, "GitHub refused to invite %s", login)
			}
			n.Login, n.State, n.Role = m.login, stateInvited, m.role
			if m.state == "active" {
				n.State = stateMember
			}
			return c.save(op, &t, n)
		}
		n.Login, n.State, n.Role, n.Invitation, n.Teams, n.UserID = login, stateInvited, role, inv.GetID(), nil, id
		return c.save(op, &t, n)
	}

	// By e-mail: only when allowed, since GitHub never says which login
	// accepts it, so Roster could not remove that person on leave.
	if !c.cfg.InviteByEmail {
		return connectors.Errorf(connectors.Invalid, op,
			"HR has no githubUsername for %s: add it (Roster invites by login, so it can remove the same login on leave), or set invite_by_email: true to invite by e-mail", act.Person.Worker)
	}
	email := act.Person.Email
	if email == "" {
		return connectors.Errorf(connectors.Invalid, op, "neither githubUsername nor an e-mail to invite")
	}
	if t.link != nil && t.link.State == stateAccepted {
		return acceptedConflict(op, t.link)
	}
	if role == "" {
		role = roleMember
	}
	var lastID int64
	if t.link != nil {
		lastID = t.link.Invitation
	}
	inv, err := c.findInvitation(ctx, op, lastID, email)
	if err != nil {
		return err
	}
	if inv == nil && t.link != nil && t.link.State == stateInvited && lastID != 0 {
		// The last invitation is no longer pending: accepted, or expired?
		failed, err := c.failedInvitations(ctx)
		if err != nil {
			return classify(op+": list failed invitations", nil, err)
		}
		if !failed[lastID] {
			n.State, n.Teams = stateAccepted, nil
			if err := c.save(op, &t, n); err != nil {
				return err
			}
			return acceptedConflict(op, n)
		}
	}
	if inv == nil {
		var ok bool
		inv, ok, err = c.invite(ctx, op, &gh.CreateOrgInvitationOptions{Email: gh.String(email), Role: gh.String(invitationRole(role))})
		if err != nil {
			return err
		}
		if !ok {
			if inv, err = c.findInvitation(ctx, op, 0, email); err != nil {
				return err
			}
			if inv == nil {
				return connectors.Errorf(connectors.Conflict, op, "GitHub refused to invite %s: the address may belong to a member already; set githubUsername in HR", email)
			}
		}
	}
	n.State, n.Invitation, n.Role = stateInvited, inv.GetID(), role
	if inv.GetRole() == "admin" {
		n.Role = roleAdmin
	}
	if inv.GetLogin() != "" {
		n.Login = inv.GetLogin()
	}
	return c.save(op, &t, n)
}

func (c *Connector) setRole(ctx context.Context, op string, act connectors.Action, t target) error {
	role := act.Entitlement.Role
	if role == "" {
		role = roleMember
	}
	n := t.next(act)
	if t.login != "" {
		m, err := c.membership(ctx, op, t.login)
		if err != nil {
			return err
		}
		if m.state == "" {
			return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
		}
		if m.role != role {
			// For a pending invitation GitHub changes the invitation's role.
			if _, resp, err := c.gh.Organizations.EditOrgMembership(ctx, m.login, c.cfg.Org, &gh.Membership{Role: gh.String(role)}); err != nil {
				return classify(op+": set org role", resp, err)
			}
		}
		n.Login, n.Role, n.State = m.login, role, stateMember
		if m.state == "pending" {
			n.State = stateInvited
		}
		return c.save(op, &t, n)
	}
	l := t.link
	switch {
	case l == nil || l.State == stateRemoved || l.State == stateExpired:
		return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
	case l.State == stateAccepted:
		return acceptedConflict(op, l)
	}
	inv, err := c.findInvitation(ctx, op, l.Invitation, l.Email)
	if err != nil {
		return err
	}
	if inv == nil {
		return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
	}
	if inv.GetRole() == invitationRole(role) {
		n.Role = role
		return c.save(op, &t, n)
	}
	// An e-mail invitation's role cannot be edited: send a new one.
	if resp, err := c.cancelInvitation(ctx, inv.GetID()); err != nil && status(err) != http.StatusNotFound {
		return classify(op+": cancel invitation", resp, err)
	}
	fresh, ok, err := c.invite(ctx, op, &gh.CreateOrgInvitationOptions{Email: gh.String(inv.GetEmail()), Role: gh.String(invitationRole(role))})
	if err != nil {
		return err
	}
	if !ok {
		return connectors.Errorf(connectors.Conflict, op, "GitHub refused to invite %s again with role %s", inv.GetEmail(), role)
	}
	n.Invitation, n.Role, n.State = fresh.GetID(), role, stateInvited
	return c.save(op, &t, n)
}

func (c *Connector) grantTeam(ctx context.Context, op string, act connectors.Action, t target) error {
	slug, role := act.Entitlement.Resource, act.Entitlement.Role
	if role == "" {
		role = roleMember
	}
	n := t.next(act)
	if t.login != "" {
		m, err := c.membership(ctx, op, t.login)
		if err != nil {
			return err
		}
		if m.state == "" {
			return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
		}
		tm, resp, err := c.gh.Teams.AddTeamMembershipBySlug(ctx, c.cfg.Org, slug, m.login, &gh.TeamAddTeamMembershipOptions{Role: role})
		switch status(err) {
		case http.StatusNotFound:
			return connectors.Errorf(connectors.NotFound, op, "organisation %s has no team %q", c.cfg.Org, slug)
		case http.StatusUnprocessableEntity:
			// Not (or no longer) a member, nor invited.
			return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
		}
		if err != nil {
			return classify(op+": add to team", resp, err)
		}
		if m.state == "active" && tm.GetState() == "pending" {
			// Removed from the org between the check and the PUT: GitHub
			// answered by inviting them back. Undo that; they have no
			// account to grant to.
			if resp, err := c.gh.Teams.RemoveTeamMembershipBySlug(ctx, c.cfg.Org, slug, m.login); err != nil && status(err) != http.StatusNotFound {
				return classify(op+": withdraw the invitation GitHub sent on adding to team", resp, err)
			}
			invs, err := c.pendingInvitations(ctx)
			if err != nil {
				return classify(op+": list invitations", nil, err)
			}
			for _, inv := range invs {
				if strings.EqualFold(inv.GetLogin(), m.login) {
					if resp, err := c.cancelInvitation(ctx, inv.GetID()); err != nil && status(err) != http.StatusNotFound {
						return classify(op+": cancel the invitation GitHub sent on adding to team", resp, err)
					}
				}
			}
			return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
		}
		n.Login = m.login
		if m.state == "active" {
			n.State = stateMember
		} else {
			n.State = stateInvited
		}
		if tm.GetState() == "pending" {
			if n.Teams == nil {
				n.Teams = map[string]string{}
			}
			n.Teams[slug] = role
		} else {
			delete(n.Teams, slug)
		}
		if t.link == nil && n.Worker == "" && n.Email == "" {
			return nil // nothing to link
		}
		return c.save(op, &t, n)
	}
	l := t.link
	switch {
	case l == nil || l.State == stateRemoved || l.State == stateExpired || l.State == stateMember:
		return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
	case l.State == stateAccepted:
		return acceptedConflict(op, l)
	}
	// A pending e-mail invitation: GitHub has no login to add to the team
	// yet. Make sure the team exists and keep the grant with the link.
	if _, resp, err := c.gh.Teams.GetTeamBySlug(ctx, c.cfg.Org, slug); err != nil {
		if status(err) == http.StatusNotFound {
			return connectors.Errorf(connectors.NotFound, op, "organisation %s has no team %q", c.cfg.Org, slug)
		}
		return classify(op+": read team", resp, err)
	}
	if n.Teams == nil {
		n.Teams = map[string]string{}
	}
	n.Teams[slug] = role
	return c.save(op, &t, n)
}

func (c *Connector) revokeTeam(ctx context.Context, op string, act connectors.Action, t target) error {
	slug := act.Entitlement.Resource
	if t.login != "" {
		resp, err := c.gh.Teams.RemoveTeamMembershipBySlug(ctx, c.cfg.Org, slug, t.login)
		if err != nil && status(err) != http.StatusNotFound {
			return classify(op+": remove from team", resp, err)
		}
	}
	if t.link == nil || t.link.Teams[slug] == "" {
		return nil
	}
	n := t.link.clone()
	delete(n.Teams, slug)
	return c.save(op, &t, n)
}

// remove takes the person out of the org and cancels their invitations;
// forget also drops the link (DeleteAccount).
func (c *Connector) remove(ctx context.Context, op string, act connectors.Action, t target, forget bool) error {
	n := t.next(act)
	found := t.link != nil
	if t.login != "" {
		m, err := c.membership(ctx, op, t.login)
		if err != nil {
			return err
		}
		if m.state != "" {
			// Also cancels a pending invitation by login, and takes the
			// member out of every team.
			resp, err := c.gh.Organizations.RemoveOrgMembership(ctx, m.login, c.cfg.Org)
			if err != nil && status(err) != http.StatusNotFound {
				return classify(op+": remove from org", resp, err)
			}
			found = true
			n.Login = m.login
			if m.state == "active" {
				n.Role = m.role
			}
		}
	} else if t.link != nil && t.link.State == stateAccepted {
		return acceptedConflict(op, t.link)
	}
	// Invitations by e-mail (or an old one by id) for the same person.
	email := act.Person.Email
	if email == "" && t.link != nil {
		email = t.link.Email
	}
	var lastID int64
	if t.link != nil {
		lastID = t.link.Invitation
	}
	if email != "" || lastID != 0 {
		invs, err := c.pendingInvitations(ctx)
		if err != nil {
			return classify(op+": list invitations", nil, err)
		}
		for _, inv := range invs {
			mine := lastID != 0 && inv.GetID() == lastID ||
				email != "" && strings.EqualFold(inv.GetEmail(), email) ||
				t.login != "" && strings.EqualFold(inv.GetLogin(), t.login)
			if !mine {
				continue
			}
			if resp, err := c.cancelInvitation(ctx, inv.GetID()); err != nil && status(err) != http.StatusNotFound {
				return classify(op+": cancel invitation", resp, err)
			}
			found = true
		}
	}
	if forget {
		return c.forget(op, &t)
	}
	if !found {
		return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
	}
	if n.Role == "" {
		n.Role = roleMember
	}
	n.State, n.Teams = stateRemoved, nil
	return c.save(op, &t, n)
}

func (c *Connector) restore(ctx context.Context, op string, act connectors.Action, t target) error {
	n := t.next(act)
	prev := roleMember
	if t.link != nil && t.link.Role != "" {
		prev = t.link.Role
	}
	if t.login != "" {
		m, err := c.membership(ctx, op, t.login)
		if err != nil {
			return err
		}
		switch m.state {
		case "active":
			n.Login, n.State, n.Role, n.Invitation = m.login, stateMember, m.role, 0
			return c.save(op, &t, n)
		case "pending":
			n.Login, n.State = m.login, stateInvited
			return c.save(op, &t, n)
		}
		if t.link == nil {
			return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
		}
		id, login, err := c.userID(ctx, op, t.login)
		if err != nil {
			return err
		}
		inv, ok, err := c.invite(ctx, op, &gh.CreateOrgInvitationOptions{InviteeID: gh.Int64(id), Role: gh.String("reinstate")})
		if err == nil && !ok {
			// Not a former member as far as GitHub knows: the role Roster
			// knew.
			inv, ok, err = c.invite(ctx, op, &gh.CreateOrgInvitationOptions{InviteeID: gh.Int64(id), Role: gh.String(invitationRole(prev))})
		}
		if err != nil {
			return err
		}
		n.Login, n.State, n.Role, n.Teams = login, stateInvited, prev, nil
		if ok {
			n.Invitation = inv.GetID()
		} else {
			m, err := c.membership(ctx, op, login)
			if err != nil {
				return err
			}
			if m.state == "" {
				return connectors.Errorf(connectors.Invalid, op, "GitHub refused to invite %s again", login)
			}
		}
		return c.save(op, &t, n)
	}
	l := t.link
	switch {
	case l == nil:
		return &connectors.Error{Kind: connectors.NotFound, Op: op, Err: errNoAccount}
	case l.State == stateAccepted:
		return acceptedConflict(op, l)
	}
	email := act.Person.Email
	if email == "" {
		email = l.Email
	}
	inv, err := c.findInvitation(ctx, op, 0, email)
	if err != nil {
		return err
	}
	if inv == nil {
		var ok bool
		inv, ok, err = c.invite(ctx, op, &gh.CreateOrgInvitationOptions{Email: gh.String(email), Role: gh.String(invitationRole(prev))})
		if err != nil {
			return err
		}
		if !ok {
			return connectors.Errorf(connectors.Conflict, op, "GitHub refused to invite %s again: the address may belong to a member already; set githubUsername in HR", email)
		}
	}
	n.State, n.Invitation, n.Role, n.Teams = stateInvited, inv.GetID(), prev, nil
	return c.save(op, &t, n)
}
