package github

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config is the settings block of one GitHub instance in roster.yaml.
//
//	github:
//	  type: github
//	  settings:
//	    org: piedpiper
//	    token: env:GITHUB_TOKEN          # a PAT (classic: admin:org)…
//	    # app: {app_id: 12345, installation_id: 678, private_key: file:/etc/roster/gh-app.pem}
//	    teams: [engineering, infra]      # required: the teams Roster manages (["*"]: all)
//	    base_url: https://api.github.com/   # GHES: https://HOST/api/v3/
//	    max_concurrent_requests: 8
//	    timeout: 30s
type Config struct {
	// Org is the organisation's login. Required.
	Org string `json:"org" yaml:"org"`
	// Token is a secret reference ("env:NAME" or "file:PATH") to a
	// personal access token. Exactly one of Token and App is set.
	Token string `json:"token,omitempty" yaml:"token,omitempty"`
	// App authenticates as a GitHub App installation.
	App *AppConfig `json:"app,omitempty" yaml:"app,omitempty"`
	// Teams lists the teams Roster manages, by slug: the snapshot reads
	// only them, grants to any other team are refused, and a managed team
	// loses every member no policy puts there. ["*"] manages every team
	// of the org. Required: managing hand-run teams by accident would
	// empty them.
	Teams []string `json:"teams,omitempty" yaml:"teams,omitempty"`
	// InviteByEmail lets a joiner whom HR gives no githubUsername be
	// invited by work e-mail. Off by default: GitHub does not say which
	// login accepts an e-mail invitation, so that account stays unlinked
	// (and cannot be removed by Roster on leave) until HR supplies the
	// githubUsername.
	InviteByEmail bool `json:"invite_by_email,omitempty" yaml:"invite_by_email,omitempty"`
	// BaseURL is the REST API root (default https://api.github.com/; for
	// GitHub Enterprise Server https://HOST/api/v3/).
	BaseURL string `json:"base_url,omitempty" yaml:"base_url,omitempty"`
	// MaxConcurrentRequests caps the requests in flight (default 8;
	// GitHub allows 100).
	MaxConcurrentRequests int `json:"max_concurrent_requests,omitempty" yaml:"max_concurrent_requests,omitempty"`
	// Timeout bounds one HTTP attempt (default 30s).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// AppConfig is a GitHub App installation's credentials.
type AppConfig struct {
	AppID          int64 `json:"app_id" yaml:"app_id"`
	InstallationID int64 `json:"installation_id" yaml:"installation_id"`
	// PrivateKey is a secret reference ("file:PATH" or "env:NAME") to the
	// app's PEM private key (PKCS #1 as GitHub issues it, or PKCS #8).
	PrivateKey string `json:"private_key" yaml:"private_key"`
}

// Duration is a time.Duration written as text ("30s") in settings.
type Duration time.Duration

// UnmarshalText parses a Go duration such as "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, as in \"30s\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// allTeams in the teams setting manages every team of the org.
const allTeams = "*"

const (
	defaultBaseURL     = "https://api.github.com/"
	defaultConcurrency = 8
	defaultTimeout     = 30 * time.Second
)

var (
	orgName  = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)
	teamSlug = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
)

// Validate checks the settings and fills in defaults; the error names the
// offending field.
func (c *Config) Validate() error {
	switch {
	case c.Org == "":
		return fmt.Errorf("org: required (the organisation's login)")
	case !orgName.MatchString(c.Org):
		return fmt.Errorf("org: %q is not a GitHub organisation login", c.Org)
	}
	switch {
	case c.Token == "" && c.App == nil:
		return fmt.Errorf("token or app: one is required (token: env:NAME for a PAT, or app: {app_id, installation_id, private_key})")
	case c.Token != "" && c.App != nil:
		return fmt.Errorf("token and app: set only one")
	}
	if c.Token != "" && !isSecretRef(c.Token) {
		return fmt.Errorf("token: must be a secret reference (env:NAME or file:PATH), not the token itself")
	}
	if a := c.App; a != nil {
		switch {
		case a.AppID <= 0:
			return fmt.Errorf("app.app_id: required, a positive number")
		case a.InstallationID <= 0:
			return fmt.Errorf("app.installation_id: required, a positive number")
		case !isSecretRef(a.PrivateKey):
			return fmt.Errorf("app.private_key: must be a secret reference (file:PATH or env:NAME)")
		}
	}
	if slices.Contains(c.Teams, allTeams) && len(c.Teams) > 1 {
		return fmt.Errorf(`teams: "*" (every team) cannot be combined with team slugs`)
	}
	seen := map[string]int{}
	for i, t := range c.Teams {
		if t == allTeams {
			continue
		}
		if !teamSlug.MatchString(t) {
			return fmt.Errorf("teams[%d]: %q is not a team slug (lower-case, as in the team's URL)", i, t)
		}
		if j, dup := seen[t]; dup {
			return fmt.Errorf("teams[%d]: %q is already listed at teams[%d]", i, t, j)
		}
		seen[t] = i
	}
	if c.BaseURL == "" {
		c.BaseURL = defaultBaseURL
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("base_url: %q is not an http(s) URL", c.BaseURL)
	}
	if u.User != nil || u.RawQuery != "" {
		return fmt.Errorf("base_url: %q must not carry credentials or a query", c.BaseURL)
	}
	if !strings.HasSuffix(c.BaseURL, "/") {
		c.BaseURL += "/"
	}
	switch {
	case c.MaxConcurrentRequests < 0:
		return fmt.Errorf("max_concurrent_requests: %d is negative", c.MaxConcurrentRequests)
	case c.MaxConcurrentRequests == 0:
		c.MaxConcurrentRequests = defaultConcurrency
	case c.MaxConcurrentRequests > 100:
		return fmt.Errorf("max_concurrent_requests: %d is above GitHub's limit of 100", c.MaxConcurrentRequests)
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("timeout: %s is negative", time.Duration(c.Timeout))
	case c.Timeout == 0:
		c.Timeout = Duration(defaultTimeout)
	}
	if len(c.Teams) == 0 {
		return fmt.Errorf(`teams: required: list the teams Roster manages (members of a managed team that no policy names are removed), or ["*"] for every team of the org`)
	}
	return nil
}

func isSecretRef(s string) bool {
	return strings.HasPrefix(s, "env:") && len(s) > 4 || strings.HasPrefix(s, "file:") && len(s) > 5
}
