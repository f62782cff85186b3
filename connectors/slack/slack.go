package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/httpapi"
	slackapi "github.com/slack-go/slack"
)

// Entitlement kinds this connector offers.
const (
	KindUsergroup = "usergroup"
	KindChannel   = "channel"
)

const (
	// readAttempts is how often a read-only Web API call is tried: slack-go
	// POSTs every method, and the shared transport retries 5xx only for
	// GET, so reads are retried here.
	readAttempts = 4
	// refreshEvery is how long an unknown user group or channel name is
	// believed unknown before the list is read again.
	refreshEvery = 30 * time.Second
	// webPageSize is the page size asked of conversations.list and
	// conversations.members (Slack's maximum).
	webPageSize = 1000
)

// Connector is one Slack workspace (or Enterprise Grid organisation).
type Connector struct {
	name       string
	cfg        Config
	api        *slackapi.Client
	scim       *scimClient
	log        *slog.Logger
	now        func() time.Time
	usergroups managed
	channels   managed
	// readBackoff is the first wait before a read is retried.
	readBackoff time.Duration

	// groupLocks serialises Roster's read-change-write cycles on one user
	// group (usergroups.users.update replaces the whole list).
	groupLocks sync.Map // group id -> *sync.Mutex

	mu sync.Mutex
	// groups maps handle -> group, from the last usergroups.list.
	groups     map[string]groupRef
	groupsRead time.Time
	// chans maps name -> channel id, from the last conversations.list.
	chans     map[string]string
	chansRead time.Time
	// refreshGroups and refreshChans let one caller at a time read a list.
	refreshGroups sync.Mutex
	refreshChans  sync.Mutex
}

// groupRef is what the connector remembers of a user group.
type groupRef struct {
	id       string
	disabled bool
}

var (
	_ connectors.Connector   = (*Connector)(nil)
	_ connectors.Checker     = (*Connector)(nil)
	_ connectors.MFAReporter = (*Connector)(nil)
)

// Open is the connectors.Opener of type "slack". It decodes and validates
// env.Settings and resolves the tokens through env.Secret; it does no
// network I/O.
func Open(_ context.Context, env connectors.Env) (connectors.Connector, error) {
	cfg := DefaultConfig()
	if env.Settings != nil {
		if err := env.Settings.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if env.Secret == nil {
		return nil, errors.New("slack: no secret resolver (Env.Secret is nil)")
	}
	token, err := env.Secret(cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("settings: token: %w", err)
	}
	scimToken := token
	if cfg.SCIMToken != "" {
		if scimToken, err = env.Secret(cfg.SCIMToken); err != nil {
			return nil, fmt.Errorf("settings: scim_token: %w", err)
		}
	}
	return New(env.Name, cfg, Options{Token: token, SCIMToken: scimToken, Logger: env.Logger, Now: env.Now, OnWait: env.OnWait})
}

// Options are what New needs besides the settings.
type Options struct {
	// Token is the Web API token's value; SCIMToken the SCIM token's
	// (empty: Token).
	Token, SCIMToken string
	// Logger gets rate-limit waits at debug level (nil: discard).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnWait is connectors.Env.OnWait.
	OnWait func(status int, wait time.Duration)
	// Base performs the HTTP requests (nil: a clone of
	// http.DefaultTransport).
	Base http.RoundTripper
	// RetryBackoff is the first wait before retrying a request that failed
	// with a 5xx or a network error when Slack names no wait (0: 250ms for
	// the transport, 200ms for read retries); it doubles every attempt.
	// Tests make it short.
	RetryBackoff time.Duration
}

// New builds an instance from decoded settings and resolved tokens. It
// validates cfg and does no I/O.
func New(name string, cfg Config, opts Options) (*Connector, error) {
	if name == "" {
		return nil, errors.New("slack: empty instance name")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if opts.Token == "" {
		return nil, errors.New("slack: the token is empty")
	}
	if opts.SCIMToken == "" {
		opts.SCIMToken = opts.Token
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	tr := &httpapi.Transport{
		Base:           opts.Base,
		AttemptTimeout: time.Duration(cfg.Timeout),
		MaxConcurrent:  cfg.MaxConcurrentRequests,
		Backoff:        opts.RetryBackoff,
		OnWait: func(ev httpapi.WaitEvent) {
			log.Debug("slack: waiting before a retry", "method", ev.Method, "path", ev.Path, "status", ev.Status,
				"wait", ev.Wait, "attempt", ev.Attempt, "asked_by_slack", ev.FromServer)
			if opts.OnWait != nil {
				opts.OnWait(ev.Status, ev.Wait)
			}
		},
	}
	hc := &http.Client{Transport: tr}
	webHC := &http.Client{Transport: tokenToHeader{next: tr}}
	c := &Connector{
		name:        name,
		cfg:         cfg,
		api:         slackapi.New(opts.Token, slackapi.OptionHTTPClient(webHC), slackapi.OptionAPIURL(cfg.APIURL)),
		scim:        &scimClient{base: cfg.SCIMURL, token: opts.SCIMToken, hc: hc},
		log:         log,
		now:         now,
		usergroups:  newManaged(cfg.Usergroups),
		channels:    newManaged(cfg.Channels),
		readBackoff: 200 * time.Millisecond,
	}
	if opts.RetryBackoff > 0 {
		c.readBackoff = opts.RetryBackoff
	}
	return c, nil
}

// tokenToHeader moves the "token" field slack-go puts in every form body
// into an "Authorization: Bearer" header, as Slack recommends: request
// bodies then carry no secret, and auth.test has no body at all (which is
// how Slack's OpenAPI description declares it).
type tokenToHeader struct{ next http.RoundTripper }

func (t tokenToHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if req.Method != http.MethodPost || req.Body == nil || req.Body == http.NoBody || mt != "application/x-www-form-urlencoded" {
		return t.next.RoundTrip(req)
	}
	raw, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	form, err := url.ParseQuery(string(raw))
	tok := form.Get("token")
	r := req.Clone(req.Context())
	body := string(raw)
	if err == nil && tok != "" {
		form.Del("token")
		body = form.Encode()
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	r.Body, _ = r.GetBody()
	if body == "" {
		r.Body, r.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		r.Header.Del("Content-Type")
	}
	return t.next.RoundTrip(r)
}

// Name returns the instance name.
func (c *Connector) Name() string { return c.name }

// Kinds returns the user group and channel kinds; neither takes a role.
func (c *Connector) Kinds() []connectors.KindSpec {
	return []connectors.KindSpec{
		{Name: KindChannel, Doc: "Slack channel by name, without the # (e.g. general)"},
		{Name: KindUsergroup, Doc: "Slack user group by handle, without the @ (e.g. oncall)"},
	}
}

// read runs one read-only Web API call, retrying it on Transient errors
// (5xx, timeouts, resets) with a short jittered backoff. Other errors are
// returned classified at once.
func (c *Connector) read(ctx context.Context, op string, fn func() error) error {
	wait := c.readBackoff
	for attempt := 1; ; attempt++ {
		err := classify(op, fn())
		if err == nil {
			return nil
		}
		if attempt >= readAttempts || connectors.KindOf(err) != connectors.Transient || ctx.Err() != nil {
			return err
		}
		d := time.Duration(float64(wait) * (0.75 + rand.Float64()/2))
		c.log.Debug("slack: retrying a read", "op", op, "wait", d, "attempt", attempt, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return classify(op, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}
