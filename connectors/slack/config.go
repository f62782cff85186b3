package slack

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Defaults of the settings.
const (
	DefaultAPIURL  = "https://slack.com/api/"
	DefaultSCIMURL = "https://api.slack.com/scim/v2/"
	// DefaultMaxConcurrent is max_concurrent_requests when unset: Slack's
	// limits are per method and per minute, so a few requests in flight
	// are enough and keep bursts small.
	DefaultMaxConcurrent = 4
	// DefaultTimeout is timeout when unset.
	DefaultTimeout = 30 * time.Second
)

// All is the value of Config.Usergroups or Config.Channels that manages
// every user group, or every non-archived channel.
const All = "*"

// Config is the settings block of one Slack instance in roster.yaml:
//
//	slack:
//	  type: slack
//	  settings:
//	    token: env:SLACK_TOKEN          # user token (xoxp-…) of a workspace admin
//	    scim_token: env:SLACK_SCIM_TOKEN  # optional; defaults to token
//	    usergroups: ["*"]              # the default: every user group
//	    channels: [general, random, eng, oncall]
//	    private_channels: false
//	    max_concurrent_requests: 4
//	    timeout: 30s
//	    # api_url: https://slack.com/api/         (tests, proxies)
//	    # scim_url: https://api.slack.com/scim/v2/
type Config struct {
	// APIURL is the Web API base URL, ending in "/".
	APIURL string `json:"api_url,omitempty" yaml:"api_url,omitempty"`
	// SCIMURL is the SCIM API base URL, ending in "/".
	SCIMURL string `json:"scim_url,omitempty" yaml:"scim_url,omitempty"`
	// Token is a secret reference ("env:NAME" or "file:PATH") to the Web
	// API token.
	Token string `json:"token" yaml:"token"`
	// SCIMToken is a secret reference to the SCIM token; empty means
	// Token (a workspace admin's user token with the admin scope serves
	// both APIs).
	SCIMToken string `json:"scim_token,omitempty" yaml:"scim_token,omitempty"`
	// Usergroups lists the handles (without "@") of the user groups Roster
	// manages; ["*"] (the default) manages every group, [] none.
	Usergroups []string `json:"usergroups,omitempty" yaml:"usergroups,omitempty"`
	// Channels lists the names (without "#") of the channels Roster
	// manages; ["*"] manages every non-archived channel. The default is
	// none: a channel Roster manages loses every member the policies do
	// not name, so each one is opted in.
	Channels []string `json:"channels,omitempty" yaml:"channels,omitempty"`
	// PrivateChannels also looks up private channels by name (the token
	// then needs groups:read and groups:write, and its user must be a
	// member of them).
	PrivateChannels bool `json:"private_channels,omitempty" yaml:"private_channels,omitempty"`
	// MaxConcurrentRequests caps the requests in flight to both APIs.
	MaxConcurrentRequests int `json:"max_concurrent_requests,omitempty" yaml:"max_concurrent_requests,omitempty"`
	// Timeout bounds one attempt of one request (waits for rate limits
	// are not counted).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// DefaultConfig returns the settings an empty block means (no token).
func DefaultConfig() Config {
	return Config{
		APIURL:                DefaultAPIURL,
		SCIMURL:               DefaultSCIMURL,
		Usergroups:            []string{All},
		MaxConcurrentRequests: DefaultMaxConcurrent,
		Timeout:               Duration(DefaultTimeout),
	}
}

// Duration is a time.Duration written as text ("30s") in settings.
type Duration time.Duration

// UnmarshalText parses a Go duration string such as "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, as in \"500ms\" or \"30s\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// handle and channel names as Slack allows them: lower case letters,
// digits, hyphens, underscores and periods.
var slackName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,79}$`)

// Validate checks the settings and fills in the defaults of zero values;
// the error names the offending field.
func (c *Config) Validate() error {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.SCIMURL == "" {
		c.SCIMURL = DefaultSCIMURL
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"api_url", &c.APIURL}, {"scim_url", &c.SCIMURL}} {
		u, err := url.Parse(*f.v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s: %q is not an http(s) URL", f.name, *f.v)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("%s: %q must have no query, fragment or user info", f.name, *f.v)
		}
		if !strings.HasSuffix(*f.v, "/") {
			*f.v += "/"
		}
	}
	if c.Token == "" {
		return fmt.Errorf("token: missing; name the Web API token as \"env:NAME\" or \"file:PATH\"")
	}
	if err := checkNames("usergroups", c.Usergroups); err != nil {
		return err
	}
	if err := checkNames("channels", c.Channels); err != nil {
		return err
	}
	if c.MaxConcurrentRequests < 0 {
		return fmt.Errorf("max_concurrent_requests: %d is negative", c.MaxConcurrentRequests)
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = DefaultMaxConcurrent
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout: %s is negative", time.Duration(c.Timeout))
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
	}
	return nil
}

func checkNames(field string, names []string) error {
	seen := map[string]int{}
	for i, n := range names {
		switch {
		case n == All && len(names) > 1:
			return fmt.Errorf("%s: %q means all and cannot be listed with names", field, All)
		case n == All:
		case strings.HasPrefix(n, "@") || strings.HasPrefix(n, "#"):
			return fmt.Errorf("%s[%d]: write %q without the leading %q", field, i, n, n[:1])
		case !slackName.MatchString(n):
			return fmt.Errorf("%s[%d]: %q is not a Slack name (lower-case letters, digits, '-', '_', '.')", field, i, n)
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("%s[%d]: %q is already listed at %d", field, i, n, j)
		}
		seen[n] = i
	}
	return nil
}

// managed is a set of names, or every name.
type managed struct {
	all   bool
	names map[string]bool
}

func newManaged(names []string) managed {
	m := managed{names: map[string]bool{}}
	for _, n := range names {
		if n == All {
			m.all = true
		}
		m.names[n] = true
	}
	return m
}

func (m managed) has(name string) bool { return m.all || m.names[name] }

func (m managed) empty() bool { return !m.all && len(m.names) == 0 }
