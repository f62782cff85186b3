package github

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	gh "github.com/google/go-github/v60/github"
	"github.com/rosterhq/roster/connectors"
)

// Check proves the credentials work with read-only calls and lists what
// they lack: for a classic PAT the admin:org (or read:org) scope, read
// from X-OAuth-Scopes; for a GitHub App or a fine-grained token the
// organisation permission Members: read & write (a 403 on the member or
// invitation lists, or the installation token's granted permissions);
// and the slugs in settings teams that name no team. err is a
// *connectors.Error when the check itself failed: Permission for bad
// credentials, NotFound for an org the credentials cannot see.
func (c *Connector) Check(ctx context.Context) (missing []string, err error) {
	op := fmt.Sprintf("github %s: check", c.name)
	_, resp, err := c.gh.Organizations.ListMembers(ctx, c.cfg.Org, &gh.ListMembersOptions{ListOptions: gh.ListOptions{PerPage: 1}})
	switch status(err) {
	case 0:
		if err != nil {
			return nil, classify(op+": list members", resp, err)
		}
	case http.StatusNotFound:
		return nil, connectors.Errorf(connectors.NotFound, op, "organisation %q does not exist or the credentials cannot see it", c.cfg.Org)
	case http.StatusForbidden:
		// Nothing more can be read: report what is needed to read.
		if c.pat {
			return []string{"scope admin:org (read:org at least to read): the token cannot list the org's members"}, nil
		}
		return []string{"permission Members: read & write (organisation): listing members is forbidden"}, nil
	default:
		return nil, classify(op+": list members", resp, err)
	}

	scopes, classic := resp.Header["X-Oauth-Scopes"]
	if c.pat && classic {
		have := map[string]bool{}
		for _, s := range strings.Split(strings.Join(scopes, ","), ",") {
			have[strings.TrimSpace(s)] = true
		}
		if !have["admin:org"] {
			missing = append(missing, "scope admin:org: needed to invite and remove members and change team memberships")
		}
		return c.checkTeams(ctx, op, missing)
	}
	// A GitHub App, or a fine-grained token: probe the owner-only list.
	_, resp, err = c.gh.Organizations.ListPendingOrgInvitations(ctx, c.cfg.Org, &gh.ListOptions{PerPage: 1})
	switch {
	case status(err) == http.StatusForbidden:
		missing = append(missing, "permission Members: read & write (organisation): listing invitations is forbidden")
	case err != nil:
		return nil, classify(op+": list invitations", resp, err)
	case c.app != nil:
		if p := c.app.grantedPermissions()["members"]; p != "write" {
			missing = append(missing, fmt.Sprintf("permission Members: read & write (organisation): the installation has %q", orNone(p)))
		}
	}
	return c.checkTeams(ctx, op, missing)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (c *Connector) checkTeams(ctx context.Context, op string, missing []string) ([]string, error) {
	teams, err := c.allTeams(ctx)
	if err != nil {
		return nil, classify(op+": list teams", nil, err)
	}
	if c.managed != nil {
		unknown, err := c.UnknownTeams(ctx, c.managedList())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for _, s := range unknown {
			missing = append(missing, fmt.Sprintf("team %q (settings teams) does not exist in organisation %s", s, c.cfg.Org))
		}
	}
	// GitHub lists the members of child teams as members of the parent,
	// and removing such a member from the parent does nothing: Roster can
	// manage only teams without children.
	children := map[string][]string{}
	for _, t := range teams {
		if p := t.GetParent(); p != nil && c.manages(p.GetSlug()) {
			children[p.GetSlug()] = append(children[p.GetSlug()], t.GetSlug())
		}
	}
	for _, parent := range slices.Sorted(maps.Keys(children)) {
		kids := children[parent]
		slices.Sort(kids)
		missing = append(missing, fmt.Sprintf("managed team %q has child teams (%s), whose members GitHub reports as members of %q: manage the child teams instead, or remove %q from settings teams",
			parent, strings.Join(kids, ", "), parent, parent))
	}
	return missing, nil
}

// manages reports whether slug is a managed team.
func (c *Connector) manages(slug string) bool {
	return c.managed == nil || c.managed[slug]
}

// UnknownTeams returns, sorted, the slugs among slugs that name no team
// of the org: for `roster policy check` to validate policies' team grants
// (expand templated slugs first). It reads the team list (a few
// conditional GETs).
func (c *Connector) UnknownTeams(ctx context.Context, slugs []string) ([]string, error) {
	teams, err := c.allTeams(ctx)
	if err != nil {
		return nil, classify(fmt.Sprintf("github %s: list teams", c.name), nil, err)
	}
	known := make(map[string]bool, len(teams))
	for _, t := range teams {
		known[t.GetSlug()] = true
	}
	var out []string
	for _, s := range slugs {
		if !known[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// UnknownResources implements connectors.ResourceChecker for teams: the
// team keys whose slug is not a team of the org.
func (c *Connector) UnknownResources(ctx context.Context, keys []connectors.EntitlementKey) ([]connectors.EntitlementKey, error) {
	var slugs []string
	for _, k := range keys {
		if k.Kind == kindTeam {
			slugs = append(slugs, k.Resource)
		}
	}
	if len(slugs) == 0 {
		return nil, nil
	}
	unknown, err := c.UnknownTeams(ctx, slugs)
	if err != nil {
		return nil, err
	}
	out := make([]connectors.EntitlementKey, 0, len(unknown))
	for _, s := range unknown {
		out = append(out, connectors.EntitlementKey{Kind: kindTeam, Resource: s})
	}
	return out, nil
}

// AccountsWithoutMFA lists the members without two-factor authentication
// (GET /orgs/{org}/members?filter=2fa_disabled), by login, sorted.
func (c *Connector) AccountsWithoutMFA(ctx context.Context) ([]connectors.AccountID, error) {
	users, err := listAll(func(opt gh.ListOptions) ([]*gh.User, *gh.Response, error) {
		return c.gh.Organizations.ListMembers(ctx, c.cfg.Org, &gh.ListMembersOptions{Filter: "2fa_disabled", ListOptions: opt})
	})
	if err != nil {
		return nil, classify(fmt.Sprintf("github %s: list members without 2FA", c.name), nil, err)
	}
	out := make([]connectors.AccountID, 0, len(users))
	for _, u := range users {
		out = append(out, connectors.AccountID(u.GetLogin()))
	}
	slices.Sort(out)
	return out, nil
}
