package slack

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/rosterhq/roster/connectors"
	slackapi "github.com/slack-go/slack"
)

// Snapshot reads every user from SCIM (externalId is the worker id, active
// the suspension), the members of every managed, enabled user group (one
// usergroups.list with include_users) and of every managed channel
// (conversations.members, cursor-paginated, a few channels at a time).
//
// A deactivated user without externalId is not reported: it is an account
// Roster released (DeleteAccount) or one deactivated before Roster, and
// holds nothing. A deactivated user holds no entitlement (Slack removes
// them on deactivation); a disabled user group has no members. Managed
// names that do not exist in Slack are skipped.
func (c *Connector) Snapshot(ctx context.Context) (*connectors.State, error) {
	op := fmt.Sprintf("slack %s: snapshot", c.name)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	users := map[string]scimUser{}
	if err := c.scim.list(ctx, func(u scimUser) { users[u.ID] = u }); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	held := map[string][]connectors.Entitlement{}
	if !c.usergroups.empty() {
		groups, err := c.listGroups(ctx, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for _, g := range groups {
			if !c.usergroups.has(g.Handle) || g.DateDelete != 0 {
				continue
			}
			e := connectors.Entitlement{Kind: KindUsergroup, Resource: g.Handle}
			for _, id := range g.Users {
				held[id] = append(held[id], e)
			}
		}
	}
	if !c.channels.empty() {
		members, err := c.channelMembers(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for name, ids := range members {
			e := connectors.Entitlement{Kind: KindChannel, Resource: name}
			for _, id := range ids {
				held[id] = append(held[id], e)
			}
		}
	}
	st := &connectors.State{App: c.name, Accounts: make([]connectors.AccountState, 0, len(users))}
	for id, u := range users {
		active := u.active()
		if released(&u) {
			continue
		}
		a := connectors.AccountState{
			ID:        connectors.AccountID(id),
			Worker:    connectors.WorkerID(u.ExternalID),
			Email:     u.email(),
			UserName:  u.UserName,
			Suspended: !active,
		}
		if active {
			a.Entitlements = slices.Clone(held[id])
			connectors.SortEntitlements(a.Entitlements)
			a.Entitlements = slices.Compact(a.Entitlements)
		}
		st.Accounts = append(st.Accounts, a)
	}
	sort.Slice(st.Accounts, func(i, j int) bool { return st.Accounts[i].ID < st.Accounts[j].ID })
	return st, nil
}

// listGroups reads every user group (disabled ones too) and refreshes the
// handle cache.
func (c *Connector) listGroups(ctx context.Context, withUsers bool) ([]slackapi.UserGroup, error) {
	var groups []slackapi.UserGroup
	opts := []slackapi.GetUserGroupsOption{slackapi.GetUserGroupsOptionIncludeDisabled(true)}
	if withUsers {
		opts = append(opts, slackapi.GetUserGroupsOptionIncludeUsers(true))
	}
	err := c.read(ctx, "list user groups", func() error {
		var err error
		groups, err = c.api.GetUserGroupsContext(ctx, opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]groupRef, len(groups))
	for _, g := range groups {
		m[g.Handle] = groupRef{id: g.ID, disabled: g.DateDelete != 0}
	}
	c.mu.Lock()
	c.groups, c.groupsRead = m, c.now()
	c.mu.Unlock()
	return groups, nil
}

// channelTypes is conversations.list's types argument.
func (c *Connector) channelTypes() []string {
	if c.cfg.PrivateChannels {
		return []string{"public_channel", "private_channel"}
	}
	return []string{"public_channel"}
}

// listChannels reads every non-archived channel's name and id (cursor
// pagination) and refreshes the name cache.
func (c *Connector) listChannels(ctx context.Context) (map[string]string, error) {
	m := map[string]string{}
	cursor := ""
	for page := 1; ; page++ {
		var chans []slackapi.Channel
		var next string
		err := c.read(ctx, fmt.Sprintf("list channels (page %d)", page), func() error {
			var err error
			chans, next, err = c.api.GetConversationsContext(ctx, &slackapi.GetConversationsParameters{
				Cursor: cursor, ExcludeArchived: true, Limit: webPageSize, Types: c.channelTypes(),
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, ch := range chans {
			if !ch.IsArchived {
				m[ch.Name] = ch.ID
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	c.mu.Lock()
	c.chans, c.chansRead = m, c.now()
	c.mu.Unlock()
	return m, nil
}

// channelMembers returns the members of every managed channel that
// exists, by channel name, reading up to max_concurrent_requests channels
// at once.
func (c *Connector) channelMembers(ctx context.Context) (map[string][]string, error) {
	chans, err := c.listChannels(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range chans {
		if c.channels.has(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		out      = make(map[string][]string, len(names))
		firstErr error
		wg       sync.WaitGroup
		work     = make(chan string)
	)
	for range min(c.cfg.MaxConcurrentRequests, len(names)) {
		wg.Go(func() {
			for name := range work {
				ids, err := c.members(ctx, name, chans[name])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				out[name] = ids
				mu.Unlock()
			}
		})
	}
feed:
	for _, name := range names {
		select {
		case work <- name:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// members reads one channel's members, page by page.
func (c *Connector) members(ctx context.Context, name, id string) ([]string, error) {
	var all []string
	cursor := ""
	for page := 1; ; page++ {
		var ids []string
		var next string
		err := c.read(ctx, fmt.Sprintf("list members of #%s (page %d)", name, page), func() error {
			var err error
			ids, next, err = c.api.GetUsersInConversationContext(ctx, &slackapi.GetUsersInConversationParameters{
				ChannelID: id, Cursor: cursor, Limit: webPageSize,
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, ids...)
		if next == "" {
			return all, nil
		}
		cursor = next
	}
}

// cachedGroup returns the group with that handle from the cache, reading
// the list again when the handle is unknown and the list is older than
// refreshEvery. An unknown handle is a NotFound error.
func (c *Connector) cachedGroup(ctx context.Context, handle, op string) (groupRef, error) {
	lookup := func() (groupRef, bool, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		g, ok := c.groups[handle]
		return g, ok, c.groups != nil && c.now().Sub(c.groupsRead) < refreshEvery
	}
	if g, ok, _ := lookup(); ok {
		return g, nil
	}
	c.refreshGroups.Lock()
	defer c.refreshGroups.Unlock()
	g, ok, fresh := lookup()
	if ok {
		return g, nil
	}
	if !fresh {
		if _, err := c.listGroups(ctx, false); err != nil {
			return groupRef{}, fmt.Errorf("%s: %w", op, err)
		}
		if g, ok, _ = lookup(); ok {
			return g, nil
		}
	}
	return groupRef{}, connectors.Errorf(connectors.NotFound, op, "no user group with handle %q in Slack", handle)
}

// groupRef returns the cached group with that handle.
func (c *Connector) groupRef(handle string) (groupRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groups[handle]
	return g, ok
}

func (c *Connector) setGroupDisabled(handle string, disabled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.groups[handle]; ok {
		g.disabled = disabled
		c.groups[handle] = g
	}
}

func (c *Connector) forgetGroup(handle string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.groups, handle)
	c.groupsRead = c.groupsRead.Add(-refreshEvery)
}

// cachedChannel is cachedGroup for channels: the id of a non-archived
// channel by name.
func (c *Connector) cachedChannel(ctx context.Context, name, op string) (string, error) {
	lookup := func() (string, bool, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		id, ok := c.chans[name]
		return id, ok, c.chans != nil && c.now().Sub(c.chansRead) < refreshEvery
	}
	if id, ok, _ := lookup(); ok {
		return id, nil
	}
	c.refreshChans.Lock()
	defer c.refreshChans.Unlock()
	id, ok, fresh := lookup()
	if ok {
		return id, nil
	}
	if !fresh {
		if _, err := c.listChannels(ctx); err != nil {
			return "", fmt.Errorf("%s: %w", op, err)
		}
		if id, ok, _ = lookup(); ok {
			return id, nil
		}
	}
	kind := "public"
	if c.cfg.PrivateChannels {
		kind = "public or private"
	}
	return "", connectors.Errorf(connectors.NotFound, op, "no %s, non-archived channel named %q in Slack", kind, strings.TrimPrefix(name, "#"))
}

func (c *Connector) forgetChannel(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.chans, name)
	c.chansRead = c.chansRead.Add(-refreshEvery)
}
