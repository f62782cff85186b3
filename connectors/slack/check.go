package slack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/rosterhq/roster/connectors"
	slackapi "github.com/slack-go/slack"
)

// scopeNeed is one OAuth scope (or any of a few) the connector needs, and
// what for.
type scopeNeed struct {
	anyOf []string
	why   string
}

// neededScopes lists the Web API scopes this instance's settings need.
func (c *Connector) neededScopes() []scopeNeed {
	need := []scopeNeed{{[]string{"users:read"}, "users.list, for the MFA report"}}
	if !c.usergroups.empty() {
		need = append(need,
			scopeNeed{[]string{"usergroups:read"}, "usergroups.list and usergroups.users.list"},
			scopeNeed{[]string{"usergroups:write"}, "usergroups.users.update, usergroups.enable and usergroups.disable"})
	}
	if !c.channels.empty() {
		need = append(need,
			scopeNeed{[]string{"channels:read"}, "conversations.list and conversations.members"},
			scopeNeed{[]string{"channels:manage", "channels:write"}, "conversations.invite and conversations.kick"})
		if c.cfg.PrivateChannels {
			need = append(need,
				scopeNeed{[]string{"groups:read"}, "private channels in conversations.list and conversations.members"},
				scopeNeed{[]string{"groups:write"}, "conversations.invite and conversations.kick on private channels"})
		}
	}
	return need
}

// Check proves both tokens work and lists what they lack: auth.test and
// its X-OAuth-Scopes header for the Web API token, one SCIM read
// (GET /Users?count=1) for the SCIM token. A Web API token Slack rejects is
// a Permission error; a SCIM token it rejects is listed as missing.
func (c *Connector) Check(ctx context.Context) ([]string, error) {
	op := fmt.Sprintf("slack %s: check", c.name)
	var resp *slackapi.AuthTestResponse
	err := c.read(ctx, "auth.test", func() error {
		var err error
		resp, err = c.api.AuthTestContext(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var missing []string
	header := resp.Header.Get("X-OAuth-Scopes")
	if header == "" {
		missing = append(missing, "cannot tell the Web API token's scopes: Slack sent no X-OAuth-Scopes header")
	} else {
		have := map[string]bool{}
		for _, s := range strings.Split(header, ",") {
			have[strings.TrimSpace(s)] = true
		}
		for _, n := range c.neededScopes() {
			if !slices.ContainsFunc(n.anyOf, func(s string) bool { return have[s] }) {
				missing = append(missing, fmt.Sprintf("scope %s (for %s)", strings.Join(n.anyOf, " or "), n.why))
			}
		}
	}
	var l scimList
	err = c.scim.do(ctx, "SCIM read users", http.MethodGet, "Users", url.Values{"startIndex": {"1"}, "count": {"1"}}, nil, &l)
	switch connectors.KindOf(err) {
	case connectors.Unknown:
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	case connectors.Permission, connectors.NotFound:
		missing = append(missing, fmt.Sprintf("SCIM API access with scim_token (a Business+ or Enterprise workspace and the admin scope): %v", err))
	default:
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return missing, nil
}

// AccountsWithoutMFA lists the active people without two-factor
// authentication, from users.list's has_2fa (which Slack shows to admins
// only: an answer without it is a Permission error). Bots, Slackbot and
// deactivated users are left out.
func (c *Connector) AccountsWithoutMFA(ctx context.Context) ([]connectors.AccountID, error) {
	op := fmt.Sprintf("slack %s: accounts without MFA", c.name)
	var out []connectors.AccountID
	p := c.api.GetUsersPaginated(slackapi.GetUsersOptionLimit(200), slackapi.GetUsersOptionIncludeLocale(false))
	for page := 1; ; page++ {
		var next slackapi.UserPagination
		done := false
		err := c.read(ctx, fmt.Sprintf("users.list (page %d)", page), func() error {
			n, err := p.Next(ctx)
			if p.Done(err) {
				done = true
				return nil
			}
			next = n
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if done {
			break
		}
		for _, u := range next.Users {
			if u.Deleted || u.IsBot || u.IsAppUser || u.ID == "USLACKBOT" {
				continue
			}
			if u.Has2FA == nil {
				return nil, connectors.Errorf(connectors.Permission, op, "users.list shows no has_2fa for %s: the token's user must be a workspace admin or owner", u.ID)
			}
			if !*u.Has2FA {
				out = append(out, connectors.AccountID(u.ID))
			}
		}
		p = next
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}
