package slack

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/rosterhq/roster/connectors"
	slackapi "github.com/slack-go/slack"
)

// Apply carries out one action; see the package documentation for what
// each kind does in Slack. Repeating an action that is in effect changes
// nothing. Errors are *connectors.Error values (Invalid before any I/O for
// an action this instance cannot take).
func (c *Connector) Apply(ctx context.Context, act connectors.Action) error {
	act.App = c.name
	op := act.String() // "slack: grant channel/eng for w-011"
	if err := c.check(act, op); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch act.Kind {
	case connectors.CreateAccount:
		return c.createAccount(ctx, act, op)
	case connectors.SuspendAccount:
		return c.suspendAccount(ctx, act, op)
	case connectors.RestoreAccount:
		return c.restoreAccount(ctx, act, op)
	case connectors.DeleteAccount:
		return c.deleteAccount(ctx, act, op)
	case connectors.Grant, connectors.Revoke:
		return c.grantOrRevoke(ctx, act, op)
	}
	return connectors.Errorf(connectors.Invalid, op, "unknown action kind %q", act.Kind)
}

// check rejects, before any I/O, an action this instance cannot take.
func (c *Connector) check(act connectors.Action, op string) error {
	invalid := func(format string, args ...any) error {
		return connectors.Errorf(connectors.Invalid, op, format, args...)
	}
	p := act.Person
	if act.Account == "" && p.Email == "" && p.UserName == "" {
		return invalid("no Slack user id, e-mail or user name to find the account by")
	}
	e := act.Entitlement
	switch act.Kind {
	case connectors.CreateAccount:
		if e.Kind != "" && (!e.IsAccount() || e.Role != "") {
			return invalid("create_account carries %q; Slack accounts take no role here", e)
		}
		if p.Email == "" {
			return invalid("Slack needs an e-mail address to create an account")
		}
	case connectors.SuspendAccount, connectors.RestoreAccount, connectors.DeleteAccount:
	case connectors.TransferData:
		return invalid("the Slack connector cannot transfer data")
	case connectors.Grant, connectors.Revoke:
		if e.IsAccount() {
			return invalid("the account is created and deleted, not granted (%q)", e)
		}
		var m managed
		switch e.Kind {
		case KindUsergroup:
			m = c.usergroups
		case KindChannel:
			m = c.channels
		default:
			return invalid("kind %q is not offered by Slack (offered: %s, %s)", e.Kind, KindChannel, KindUsergroup)
		}
		if e.Role != "" {
			return invalid("kind %q takes no role, got %q", e.Kind, e.Role)
		}
		if strings.HasPrefix(e.Resource, "#") || strings.HasPrefix(e.Resource, "@") {
			return invalid("write %q without the leading %q", e.Resource, e.Resource[:1])
		}
		if !m.has(e.Resource) {
			return invalid("%s %q is not managed by this instance: list it in the settings' %ss", e.Kind, e.Resource, e.Kind)
		}
	default:
		return invalid("unknown action kind %q", act.Kind)
	}
	return nil
}

// found is the account an action is about, as SCIM reports it.
type found struct {
	user *scimUser
	// byID is true when the action's account id named it.
	byID bool
	// otherWorker is the worker a user with the person's e-mail (or user
	// name) is linked to, when that is someone else.
	otherWorker string
}

// released reports whether the user is an account Roster let go (or one
// deactivated before Roster): deactivated and linked to no worker.
func released(u *scimUser) bool {
	return !u.active() && (u.ExternalID == "" || strings.HasPrefix(u.ExternalID, releasedPrefix))
}

// releasedPrefix marks the externalId of a user Roster released (Slack
// cannot delete users): "released:<worker>". The user keeps its messages;
// only that worker, rehired, gets it back.
const releasedPrefix = "released:"

// releasedBy returns the worker a released user belonged to, or "".
func releasedBy(externalID string) string {
	w, ok := strings.CutPrefix(externalID, releasedPrefix)
	if !ok {
		return ""
	}
	return w
}

// find looks the action's account up: by its id when known (a stale id
// falls back to the search), else by e-mail (or user name) with a SCIM
// filter. A user linked to another worker is not the person's account.
func (c *Connector) find(ctx context.Context, act connectors.Action) (found, error) {
	if act.Account != "" {
		u, err := c.scim.get(ctx, string(act.Account))
		if err != nil {
			return found{}, err
		}
		if u != nil {
			return found{user: u, byID: true}, nil
		}
	}
	attr, value := "email", act.Person.Email
	if value == "" {
		attr, value = "userName", slackUserName(act.Person)
	}
	users, err := c.scim.find(ctx, attr, value)
	if err != nil {
		return found{}, err
	}
	var f found
	worker := string(act.Person.Worker)
	for i := range users {
		u := &users[i]
		switch {
		case releasedBy(u.ExternalID) == worker && worker != "":
			if f.user == nil {
				f.user = u // this worker's own account, released: a rehire takes it back
			}
		case u.ExternalID != "" && u.ExternalID != worker:
			f.otherWorker = u.ExternalID
		case f.user == nil || u.ExternalID == worker && f.user.ExternalID != worker:
			f.user = u
		}
	}
	return f, nil
}

func (c *Connector) createAccount(ctx context.Context, act connectors.Action, op string) error {
	p := act.Person
	f, err := c.find(ctx, act)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if f.user == nil && f.otherWorker == "" {
		yes := true
		u := scimUser{
			UserName:    slackUserName(p),
			DisplayName: p.DisplayName,
			Emails:      []scimEmail{{Value: p.Email, Primary: true}},
			ExternalID:  string(p.Worker),
			Active:      &yes,
		}
		if p.GivenName != "" || p.FamilyName != "" {
			u.Name = &scimName{GivenName: p.GivenName, FamilyName: p.FamilyName}
		}
		_, err := c.scim.create(ctx, u)
		// A user name taken by somebody else (two people with the same
		// name): try name.2 … name.9, as an admin would.
		for k := 2; k <= 9 && connectors.KindOf(err) == connectors.Conflict && strings.Contains(err.Error(), "username_taken"); k++ {
			if f2, ferr := c.find(ctx, act); ferr != nil || f2.user != nil || f2.otherWorker != "" {
				break // it was us (a lost answer), or the e-mail is taken: handled below
			}
			u.UserName = numberedUserName(slackUserName(p), k)
			_, err = c.scim.create(ctx, u)
		}
		if err == nil {
			return nil
		}
		if connectors.KindOf(err) != connectors.Conflict {
			return fmt.Errorf("%s: %w", op, err)
		}
		// 409: the e-mail or user name is taken. Our own earlier create
		// whose answer was lost, or a user the search did not show:
		// look again before giving up.
		f2, ferr := c.find(ctx, act)
		if ferr != nil || f2.user == nil && f2.otherWorker == "" {
			return fmt.Errorf("%s: %w", op, err)
		}
		f = f2
	}
	if f.user == nil {
		if w := releasedBy(f.otherWorker); w != "" {
			return connectors.Errorf(connectors.Conflict, op, "the Slack user with e-mail %s belonged to worker %q, who left; it keeps their messages, so Roster will not give it to %q: use another address, or clear its externalId in Slack to hand it over", p.Email, w, p.Worker)
		}
		return connectors.Errorf(connectors.Conflict, op, "the Slack user with e-mail %s is linked to worker %q, not %q", p.Email, f.otherWorker, p.Worker)
	}
	if f.user.ExternalID != "" && f.user.ExternalID != string(p.Worker) && releasedBy(f.user.ExternalID) != string(p.Worker) {
		return connectors.Errorf(connectors.Conflict, op, "Slack user %s is linked to worker %q, not %q", f.user.ID, f.user.ExternalID, p.Worker)
	}
	return c.activateAndLink(ctx, f.user, p, op)
}

// activateAndLink reactivates u and sets its externalId to the worker,
// as far as either is needed, in one PATCH.
func (c *Connector) activateAndLink(ctx context.Context, u *scimUser, p connectors.Person, op string) error {
	var ops []scimPatchOp
	if !u.active() {
		ops = append(ops, scimPatchOp{Op: "replace", Path: "active", Value: true})
	}
	if (u.ExternalID == "" || releasedBy(u.ExternalID) == string(p.Worker)) && p.Worker != "" {
		ops = append(ops, scimPatchOp{Op: "replace", Path: "externalId", Value: string(p.Worker)})
	}
	if len(ops) == 0 {
		return nil
	}
	if err := c.scim.patch(ctx, u.ID, ops...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (c *Connector) noAccount(f found, op string, act connectors.Action) error {
	if f.otherWorker != "" {
		return connectors.Errorf(connectors.NotFound, op, "no Slack account for worker %q (the user with e-mail %s is linked to worker %q)",
			act.Person.Worker, act.Person.Email, f.otherWorker)
	}
	return connectors.Errorf(connectors.NotFound, op, "no Slack account for worker %q (%s)", act.Person.Worker, act.Person.Email)
}

func (c *Connector) suspendAccount(ctx context.Context, act connectors.Action, op string) error {
	f, err := c.find(ctx, act)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if f.user == nil {
		return c.noAccount(f, op, act)
	}
	if !f.user.active() {
		return nil
	}
	if err := c.scim.deactivate(ctx, f.user.ID); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (c *Connector) restoreAccount(ctx context.Context, act connectors.Action, op string) error {
	f, err := c.find(ctx, act)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if f.user == nil {
		return c.noAccount(f, op, act)
	}
	if f.byID && f.user.ExternalID != "" && f.user.ExternalID != string(act.Person.Worker) {
		return connectors.Errorf(connectors.Conflict, op, "Slack user %s is linked to worker %q, not %q", f.user.ID, f.user.ExternalID, act.Person.Worker)
	}
	return c.activateAndLink(ctx, f.user, act.Person, op)
}

// deleteAccount releases the account: Slack cannot delete users, so the
// user is deactivated and its externalId set to "released:<worker>".
// Snapshot no longer reports it; the same worker, rehired, takes it back,
// and anybody else given the address is refused (Conflict) rather than
// handed the leaver's messages.
func (c *Connector) deleteAccount(ctx context.Context, act connectors.Action, op string) error {
	f, err := c.find(ctx, act)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	u := f.user
	if u == nil || released(u) {
		return nil
	}
	if u.ExternalID != "" && u.ExternalID != string(act.Person.Worker) {
		return connectors.Errorf(connectors.Conflict, op, "Slack user %s is linked to worker %q, not %q", u.ID, u.ExternalID, act.Person.Worker)
	}
	// Deactivate first: if the second step fails, the account is
	// suspended and still linked, and the retry finishes the job.
	if u.active() {
		if err := c.scim.deactivate(ctx, u.ID); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := c.scim.patch(ctx, u.ID, scimPatchOp{Op: "replace", Path: "externalId", Value: releasedPrefix + string(act.Person.Worker)}); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// grantOrRevoke changes one user group or channel membership.
func (c *Connector) grantOrRevoke(ctx context.Context, act connectors.Action, op string) error {
	grant := act.Kind == connectors.Grant
	uid := string(act.Account)
	if uid == "" {
		f, err := c.find(ctx, act)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if f.user == nil || released(f.user) {
			return c.noAccount(f, op, act)
		}
		if !f.user.active() {
			if grant {
				return connectors.Errorf(connectors.Conflict, op, "Slack user %s is deactivated; restore the account first", f.user.ID)
			}
			return nil // deactivation removed every membership
		}
		uid = f.user.ID
	}
	res := act.Entitlement.Resource
	switch {
	case act.Entitlement.Kind == KindUsergroup && grant:
		return c.addToGroup(ctx, uid, res, op)
	case act.Entitlement.Kind == KindUsergroup:
		return c.removeFromGroup(ctx, uid, res, op)
	case grant:
		return c.invite(ctx, uid, res, op)
	default:
		return c.kick(ctx, uid, res, op)
	}
}

// lockGroup serialises this instance's read-change-write cycles on one
// user group, so two concurrent grants cannot overwrite each other.
func (c *Connector) lockGroup(id string) func() {
	m, _ := c.groupLocks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// groupUsers reads a group's member list.
func (c *Connector) groupUsers(ctx context.Context, handle, id, op string) ([]string, error) {
	var users []string
	err := c.read(ctx, op+": read members of @"+handle, func() error {
		var err error
		users, err = c.api.GetUserGroupMembersContext(ctx, id, slackapi.GetUserGroupMembersOptionIncludeDisabled(true))
		return err
	})
	if code, _ := slackCode(err); code == "no_such_subteam" {
		c.forgetGroup(handle)
	}
	return users, err
}

// setGroupUsers writes a group's whole member list. It refuses an empty
// list: Slack would reject it, and emptying a group is done by disabling
// it.
func (c *Connector) setGroupUsers(ctx context.Context, handle, id string, users []string, op string) (disabled bool, err error) {
	if len(users) == 0 {
		return false, connectors.Errorf(connectors.Invalid, op, "refusing to send an empty member list for @%s", handle)
	}
	g, err := c.api.UpdateUserGroupMembersContext(ctx, id, strings.Join(users, ","))
	if err != nil {
		if code, _ := slackCode(err); code == "no_such_subteam" {
			c.forgetGroup(handle)
		}
		return false, classify(op+": update members of @"+handle, err)
	}
	return g.DateDelete != 0, nil
}

func (c *Connector) enableGroup(ctx context.Context, handle, id, op string) error {
	if _, err := c.api.EnableUserGroupContext(ctx, id); err != nil {
		return classify(op+": enable @"+handle, err)
	}
	c.setGroupDisabled(handle, false)
	return nil
}

// currentGroup is g as it is now, for a caller that holds g's lock: what
// another change of this instance did while the caller waited for the lock
// (a grant that enabled the group), and, when the group still looks
// disabled, what Slack says (an admin may have enabled it by hand and
// added people since the last read). Writing the list of a group believed
// disabled replaces it, so that belief is checked first.
func (c *Connector) currentGroup(ctx context.Context, g groupRef, handle, op string) (groupRef, error) {
	if cur, ok := c.groupRef(handle); ok && cur.id == g.id {
		g = cur
	}
	if !g.disabled {
		return g, nil
	}
	if _, err := c.listGroups(ctx, false); err != nil {
		return g, fmt.Errorf("%s: %w", op, err)
	}
	if cur, ok := c.groupRef(handle); ok && cur.id == g.id {
		g = cur
	}
	return g, nil
}

// addToGroup adds uid to the group: read the list, add, write it back.
// A disabled group grants nothing: its list (the last member Roster could
// not remove) is replaced by uid alone, then the group is enabled again.
func (c *Connector) addToGroup(ctx context.Context, uid, handle, op string) error {
	g, err := c.cachedGroup(ctx, handle, op)
	if err != nil {
		return err
	}
	defer c.lockGroup(g.id)()
	if g, err = c.currentGroup(ctx, g, handle, op); err != nil {
		return err
	}
	if !g.disabled {
		users, err := c.groupUsers(ctx, handle, g.id, op)
		if err != nil {
			return err
		}
		if slices.Contains(users, uid) {
			return nil
		}
		disabled, err := c.setGroupUsers(ctx, handle, g.id, append(users, uid), op)
		if connectors.KindOf(err) == connectors.NotFound {
			// Deleted, or disabled by hand where Slack will not change a
			// disabled group's list: read the groups to tell which.
			if _, lerr := c.listGroups(ctx, false); lerr != nil {
				return fmt.Errorf("%s: %w", op, lerr)
			}
			if now, ok := c.groupRef(handle); ok && now.id == g.id && now.disabled {
				disabled, err = true, nil
			}
		}
		if err != nil || !disabled {
			return err
		}
		// Someone disabled the group since the last snapshot: continue
		// as for a disabled group.
		c.setGroupDisabled(handle, true)
	}
	_, err = c.setGroupUsers(ctx, handle, g.id, []string{uid}, op)
	switch connectors.KindOf(err) {
	case connectors.Unknown:
		if err == nil {
			return c.enableGroup(ctx, handle, g.id, op)
		}
		return err
	case connectors.Transient, connectors.RateLimited, connectors.Permission:
		return err
	}
	// Slack would not change the list of a disabled group: enable it, then
	// write the list (the stale member is back for the moment between).
	if err := c.enableGroup(ctx, handle, g.id, op); err != nil {
		return err
	}
	_, err = c.setGroupUsers(ctx, handle, g.id, []string{uid}, op)
	return err
}

// removeFromGroup removes uid from the group. Slack refuses an empty
// member list, so removing the last member disables the group instead
// (a disabled group has no effective members; the next grant enables it
// with only the new member).
func (c *Connector) removeFromGroup(ctx context.Context, uid, handle, op string) error {
	g, err := c.cachedGroup(ctx, handle, op)
	if err != nil {
		return err
	}
	defer c.lockGroup(g.id)()
	if g, err = c.currentGroup(ctx, g, handle, op); err != nil {
		return err
	}
	if g.disabled {
		return nil
	}
	users, err := c.groupUsers(ctx, handle, g.id, op)
	if err != nil {
		return err
	}
	i := slices.Index(users, uid)
	if i < 0 {
		return nil
	}
	rest := slices.Delete(users, i, i+1)
	if len(rest) > 0 {
		_, err := c.setGroupUsers(ctx, handle, g.id, rest, op)
		return err
	}
	if _, err := c.api.DisableUserGroupContext(ctx, g.id); err != nil {
		return classify(op+": disable @"+handle+" (removing its last member)", err)
	}
	c.setGroupDisabled(handle, true)
	return nil
}

func (c *Connector) invite(ctx context.Context, uid, name, op string) error {
	id, err := c.cachedChannel(ctx, name, op)
	if err != nil {
		return err
	}
	_, err = c.api.InviteUsersToConversationContext(ctx, id, uid)
	switch code, _ := slackCode(err); code {
	case "":
	case errAlreadyInChannel:
		return nil
	case errNotInChannel:
		return connectors.Errorf(connectors.Conflict, op, "the token's user is not a member of #%s, so it cannot invite anyone; add it to the channel", name)
	case "channel_not_found", "is_archived":
		c.forgetChannel(name)
		if code == "is_archived" {
			return connectors.Errorf(connectors.NotFound, op, "#%s is archived", name)
		}
	}
	return classify(op, err)
}

func (c *Connector) kick(ctx context.Context, uid, name, op string) error {
	id, err := c.cachedChannel(ctx, name, op)
	if err != nil {
		return err
	}
	err = c.api.KickUserFromConversationContext(ctx, id, uid)
	switch code, _ := slackCode(err); code {
	case errNotInChannel:
		return nil
	case "channel_not_found":
		c.forgetChannel(name)
	}
	return classify(op, err)
}

var userNameChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// slackUserName is the Slack user name for p: its UserName (or the
// e-mail's local part) in lower case, other characters replaced by ".",
// at most 21 characters, as Slack requires.
// numberedUserName is name with ".k" appended, cut to Slack's 21
// characters.
func numberedUserName(name string, k int) string {
	suffix := fmt.Sprintf(".%d", k)
	if len(name)+len(suffix) > 21 {
		name = strings.TrimRight(name[:21-len(suffix)], ".")
	}
	return name + suffix
}

func slackUserName(p connectors.Person) string {
	n := p.UserName
	if n == "" {
		n, _, _ = strings.Cut(p.Email, "@")
	}
	n = userNameChars.ReplaceAllString(strings.ToLower(n), ".")
	n = strings.Trim(n, ".")
	if len(n) > 21 {
		n = strings.TrimRight(n[:21], ".")
	}
	if n == "" {
		n = "user"
	}
	return n
}
