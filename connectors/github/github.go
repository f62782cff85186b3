// Package github is Roster's connector for a GitHub organisation (REST API
// version 2022-11-28, through go-github v60).
//
// # What it manages
//
// The account is org membership. A joiner is invited: by user id when HR
// supplies the GitHub login (Person.Attributes["githubUsername"]; GET
// /users/{login}, then POST /orgs/{org}/invitations with invitee_id),
// otherwise by Person.Email. A pending invitation is an account in
// progress (AccountState.Pending). Account roles are "member" and "admin"
// (GitHub's direct_member and admin); an existing member's role changes
// with PUT /orgs/{org}/memberships/{login}.
//
// Entitlements are of kind "team", resource = team slug, roles "member"
// and "maintainer" (PUT and DELETE
// /orgs/{org}/teams/{slug}/memberships/{login}). A team grant to an invited person is pending on GitHub until
// the invitation is accepted; the snapshot reports it from the link table
// meanwhile. A grant to an unknown team is a terminal NotFound; one to a
// team outside settings.teams is a terminal Invalid.
//
// GitHub cannot suspend an org member, so SuspendAccount removes the person
// from the org (DELETE /orgs/{org}/memberships/{login}, which also takes
// them out of every team) and cancels their pending invitations;
// RestoreAccount invites them again with role "reinstate" (GitHub then
// restores their previous role) or, where GitHub refuses it, the role
// Roster last knew; DeleteAccount removes them as well and forgets the
// link. A removed person stays in the snapshot as a suspended account
// until it is deleted, so a rehire restores them.
//
// # Linking accounts to workers
//
// GitHub stores neither Roster's worker id nor an e-mail on a member, so the
// connector keeps a link table (see link) in Roster's data file: bucket
// connector/<instance>/links, keyed by lower-cased login or
// "invitation:<id>", with the worker, e-mail, state (invited, member,
// removed…), role and pending team grants; and
// connector/<instance>/links_by_worker, the index by worker id. It is written when Roster
// invites, when the login becomes known (an invited login turns member, or
// an action carries githubUsername) and when Roster removes someone; a
// snapshot writes only state changes it observes. Members with no link are
// reported with ID = login and no worker: Roster reports them as orphans
// and never touches them. Without a data file (Env.DB nil, unit tests) the
// links live in memory and die with the connector.
//
// Account ids are the login, or "invitation:<id>" for an e-mail
// invitation. E-mail invitations are sent only with invite_by_email: true
// (a joiner without githubUsername is otherwise a terminal Invalid),
// because when an e-mail invitation is accepted, GitHub
// does not say which login accepted it. The connector tells an accepted
// invitation from an expired one (GET /orgs/{org}/failed_invitations) and
// reports the accepted one as an active account "invitation:<id>" with no
// teams; the new login meanwhile shows up as an orphan. Grants, suspension
// and deletion of such an account fail with a terminal Conflict that asks
// for githubUsername in HR; once HR supplies it, the next action links the
// login. Inviting by login (githubUsername) avoids all of this.
//
// # Snapshot
//
// Members (GET /orgs/{org}/members, and ?role=admin for the owners), pending
// invitations, the teams (settings.teams, or all with ["*"]) and the members of each
// managed team with their roles (?role=maintainer and ?role=member), 100 a
// page following Link headers, up to max_concurrent_requests at a time.
// Every GET is conditional: an in-memory cache per connector instance keeps
// each URL's ETag and body, sends If-None-Match and reuses the body on a
// 304, which GitHub does not count against the rate limit — a second
// snapshot of an unchanged org costs (almost) nothing of the budget.
//
// # Settings
//
// See Config: org (required), token (secret reference to a PAT) or app
// {app_id, installation_id, private_key} (the connector signs an RS256
// JWT, exchanges it for an installation token and refreshes that five
// minutes before it expires), teams, base_url (default
// https://api.github.com/), max_concurrent_requests (default 8), timeout
// (per HTTP attempt, default 30s).
//
// # Permissions
//
// A classic PAT needs admin:org (invite, remove, change teams; read:org
// is enough only to read). A GitHub App needs the organisation permission
// Members: read & write. The token's owner must be an org owner. Check
// (connectors.Checker) reports what is missing; UnknownTeams lists team
// slugs that do not exist.
//
// # How it fails
//
// Open rejects bad settings and unresolvable secrets, naming the field
// (never the secret's value); it does no network I/O. Every other method
// returns *connectors.Error values: 429s and GitHub's primary and
// secondary rate limits are waited out inside one call when the wait is
// short (connectors/httpapi.Transport, logged with env.Logger) and
// otherwise returned as RateLimited with RetryAfter; 5xx and network
// errors are retried for reads and returned as Transient for writes;
// 401/403 are Permission, 404 NotFound, 422 Invalid. Applies are
// idempotent: "already a member", "already invited", "already removed"
// are success. A cancelled context is returned wrapped, unclassified.
// Tokens never appear in errors or logs.
package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/httpapi"
	bolt "go.etcd.io/bbolt"
)

// Connector is one GitHub organisation instance.
type Connector struct {
	name    string
	cfg     Config
	gh      *gh.Client
	links   linkStore
	log     *slog.Logger
	now     func() time.Time
	managed map[string]bool // nil: every team
	cache   *etagCache
	app     *appTokens // nil with a PAT
	pat     bool
}

var (
	_ connectors.Connector       = (*Connector)(nil)
	_ connectors.Checker         = (*Connector)(nil)
	_ connectors.MFAReporter     = (*Connector)(nil)
	_ connectors.ResourceChecker = (*Connector)(nil)
)

// Open is the connectors.Opener of type "github". It decodes and validates
// env.Settings, resolves the token or the app's private key through
// env.Secret, and does no network I/O.
func Open(_ context.Context, env connectors.Env) (connectors.Connector, error) {
	var cfg Config
	if env.Settings != nil {
		if err := env.Settings.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if env.Secret == nil {
		return nil, errors.New("github: no secret resolver (Env.Secret is nil)")
	}
	var (
		token string
		key   string
	)
	if cfg.Token != "" {
		t, err := env.Secret(cfg.Token)
		if err != nil {
			return nil, fmt.Errorf("settings: token: %w", err)
		}
		if t == "" {
			return nil, fmt.Errorf("settings: token: %s is empty", cfg.Token)
		}
		token = t
	} else {
		k, err := env.Secret(cfg.App.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("settings: app.private_key: %w", err)
		}
		key = k
	}
	return New(env.Name, cfg, Credentials{Token: token, PrivateKeyPEM: key}, Deps{
		DB: env.DB, Update: env.Update, Logger: env.Logger, Now: env.Now, OnWait: env.OnWait,
	})
}

// Credentials are the resolved secrets: the PAT, or the app's PEM key.
type Credentials struct {
	Token         string
	PrivateKeyPEM string
}

// Deps are what a connector takes from its host; every field may be nil.
type Deps struct {
	// DB holds the link table; nil keeps it in memory.
	DB *bolt.DB
	// Update writes to DB in a shared transaction; nil uses DB.Update.
	Update func(fn func(tx *bolt.Tx) error) error
	Logger *slog.Logger
	Now    func() time.Time
	// Base is the innermost HTTP transport (nil: a clone of
	// http.DefaultTransport).
	Base http.RoundTripper
	// RetryBackoff is the first wait before retrying a failed read when
	// GitHub names none (0: httpapi.Transport's default, 250ms).
	RetryBackoff time.Duration
	// OnWait is connectors.Env.OnWait.
	OnWait func(status int, wait time.Duration)
}

// New builds an instance from decoded settings and resolved secrets; cfg
// is validated (and defaulted) here. It does no I/O.
func New(name string, cfg Config, cred Credentials, deps Deps) (*Connector, error) {
	if name == "" {
		return nil, errors.New("github: empty instance name")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	c := &Connector{name: name, cfg: cfg, log: deps.Logger, now: deps.Now}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if !slices.Contains(cfg.Teams, allTeams) {
		c.managed = map[string]bool{}
		for _, t := range cfg.Teams {
			c.managed[t] = true
		}
	}
	if deps.DB != nil {
		commit := deps.Update
		if commit == nil {
			commit = deps.DB.Update
		}
		c.links = &boltLinks{db: deps.DB, name: name, commit: commit}
	} else {
		c.links = newMemLinks()
	}
	retry := &httpapi.Transport{
		Base:           deps.Base,
		AttemptTimeout: time.Duration(cfg.Timeout),
		MaxConcurrent:  cfg.MaxConcurrentRequests,
		Backoff:        deps.RetryBackoff,
		// GitHub: without retry-after, "wait for at least one minute".
		RateLimitBackoff: secondaryLimitWait,
		OnWait: func(ev httpapi.WaitEvent) {
			c.log.Info("github: waiting before retrying", "method", ev.Method, "path", ev.Path, "status", ev.Status,
				"wait", ev.Wait.String(), "attempt", ev.Attempt, "asked_by_github", ev.FromServer)
			if deps.OnWait != nil {
				deps.OnWait(ev.Status, ev.Wait)
			}
		},
	}
	baseURL, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("settings: base_url: %w", err)
	}
	var tokenFn func(context.Context) (string, error)
	switch {
	case cfg.App != nil:
		key, err := parsePrivateKey(cred.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("settings: app.private_key: %w", err)
		}
		u := baseURL.JoinPath("app", "installations", strconv.FormatInt(cfg.App.InstallationID, 10), "access_tokens")
		c.app = &appTokens{appID: cfg.App.AppID, installationID: cfg.App.InstallationID, key: key, url: u.String(),
			hc: &http.Client{Transport: retry}, now: c.now}
		tokenFn = c.app.token
	default:
		if cred.Token == "" {
			return nil, errors.New("settings: token: no token given")
		}
		tok := cred.Token
		tokenFn = func(context.Context) (string, error) { return tok, nil }
		c.pat = true
	}
	c.cache = &etagCache{next: &authTransport{next: retry, token: tokenFn}, maxEntries: 20000}
	c.gh = gh.NewClient(&http.Client{Transport: c.cache})
	c.gh.BaseURL = baseURL
	c.gh.UserAgent = "roster-github-connector"
	return c, nil
}

// Name returns the instance name.
func (c *Connector) Name() string { return c.name }

// Kinds declares the account roles and the team kind.
func (c *Connector) Kinds() []connectors.KindSpec {
	return []connectors.KindSpec{
		{Name: connectors.KindAccount, Roles: []string{roleMember, roleAdmin}, Doc: "GitHub organisation membership (admin = owner)"},
		{Name: kindTeam, Roles: []string{roleMember, roleMaintainer}, Doc: "GitHub team, by slug"},
	}
}

const (
	kindTeam       = "team"
	roleMember     = "member"
	roleAdmin      = "admin"
	roleMaintainer = "maintainer"

	// attrUsername is the HR attribute with the person's GitHub login.
	attrUsername = "githubUsername"
)

// teamManaged reports whether slug is one of the teams Roster manages.
func (c *Connector) teamManaged(slug string) bool {
	return c.managed == nil || c.managed[slug]
}

func (c *Connector) managedList() []string {
	out := make([]string, 0, len(c.managed))
	for t := range c.managed {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
