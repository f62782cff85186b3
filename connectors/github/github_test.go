package github

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/connectortest"
	"github.com/rosterhq/roster/connectors/github/githubfake"
	bolt "go.etcd.io/bbolt"
)

// yamlSettings is a connectors.Settings holding a YAML settings block,
// decoded strictly as roster.yaml's are.
type yamlSettings string

func (s yamlSettings) Decode(v any) error {
	return yaml.NewDecoder(strings.NewReader(string(s)), yaml.DisallowUnknownField()).Decode(v)
}

// secrets resolves env:NAME from a map and file:PATH from disk.
func secrets(env map[string]string) func(string) (string, error) {
	return func(ref string) (string, error) {
		switch {
		case strings.HasPrefix(ref, "env:"):
			v, ok := env[strings.TrimPrefix(ref, "env:")]
			if !ok {
				return "", fmt.Errorf("%s is not set", ref)
			}
			return v, nil
		case strings.HasPrefix(ref, "file:"):
			b, err := os.ReadFile(strings.TrimPrefix(ref, "file:"))
			return string(b), err
		}
		return "", fmt.Errorf("unknown secret reference %q", ref)
	}
}

// openDB opens a bbolt file in t.TempDir and checks its integrity on
// cleanup.
func openDB(t testing.TB) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "roster.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Errorf("bbolt integrity: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close db: %v", err)
		}
	})
	return db
}

func newFake(t testing.TB, opts githubfake.Options) *githubfake.Server {
	t.Helper()
	if opts.Org == "" {
		opts.Org = "piedpiper"
	}
	f := githubfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

// setup is how a test opens a connector.
type setup struct {
	url      string // API root, with the trailing slash
	token    string
	extra    string // more settings lines
	db       *bolt.DB
	now      func() time.Time
	logger   *logRecorder
	settings string // replaces the generated settings when set
	env      map[string]string
	timeout  string // per attempt; 2s when empty
}

func open(t testing.TB, s setup) *Connector {
	t.Helper()
	settings := s.settings
	if s.timeout == "" {
		s.timeout = "2s"
	}
	if settings == "" {
		settings = fmt.Sprintf("org: piedpiper\ntoken: env:GH_TOKEN\nbase_url: %s\ntimeout: %s\n%s", s.url, s.timeout, s.extra)
		if !strings.Contains(s.extra, "teams:") {
			settings += "teams: [\"*\"]\n"
		}
	}
	env := map[string]string{"GH_TOKEN": s.token}
	for k, v := range s.env {
		env[k] = v
	}
	e := connectors.Env{Name: "github", Settings: yamlSettings(settings), Secret: secrets(env), DB: s.db, Now: s.now}
	if s.logger != nil {
		e.Logger = s.logger.logger()
	}
	c, err := Open(t.Context(), e)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c.(*Connector)
}

// person is the i-th test person, with a GitHub login.
func person(i int) connectors.Person {
	p := connectortest.DefaultPerson(i)
	p.Attributes = map[string]string{"githubUsername": p.UserName}
	return p
}

var suiteTeams = []string{"backend", "frontend", "infra"}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name       string
		autoAccept bool
		db         bool
	}{
		{"InvitationsPending", false, true},
		{"InvitationsAccepted", true, true},
		{"NoDataFile", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectortest.Run(t, func(t *testing.T) connectortest.Target {
				f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: tc.autoAccept})
				s := setup{url: f.URL + "/", token: f.Token()}
				if tc.db {
					s.db = openDB(t)
				}
				return connectortest.Target{
					Connector: open(t, s),
					People:    person,
					Grants: []connectors.Entitlement{
						{Kind: "team", Resource: "backend"},
						{Kind: "team", Resource: "frontend", Role: "maintainer"},
					},
					ManyMembers:        210, // three pages of 100
					SuspendKeepsGrants: false,
				}
			})
		})
	}
}

// TestConformanceThroughPrism runs the suite with GitHub's published
// OpenAPI description checking every request and answer between the
// connector and the fake.
func TestConformanceThroughPrism(t *testing.T) {
	if testing.Short() {
		t.Skip("prism: slow")
	}
	f := newFake(t, githubfake.Options{Teams: suiteTeams, AnyUser: true, AutoAccept: true})
	proxy := connectortest.Prism(t, "testdata/github-api.github.com-iam-subset.prism.json", f.URL)
	base := 0
	connectortest.Run(t, func(t *testing.T) connectortest.Target {
		// One fake (prism takes a second to start): every subtest gets
		// people of its own.
		base += 10000
		base := base
		return connectortest.Target{
			Connector: open(t, setup{url: proxy + "/", token: f.Token(), db: openDB(t)}),
			People:    func(i int) connectors.Person { return person(base + i) },
			Grants: []connectors.Entitlement{
				{Kind: "team", Resource: "backend"},
				{Kind: "team", Resource: "frontend", Role: "maintainer"},
			},
			ManyMembers: 110,
		}
	})
}

// logRecorder collects log output.
type logRecorder struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// applyRetrying applies a as the executor does: retrying Transient and
// RateLimited errors (honouring RetryAfter, capped for the test).
func applyRetrying(t testing.TB, ctx context.Context, c connectors.Connector, a connectors.Action) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := c.Apply(ctx, a)
		if err == nil {
			return
		}
		if !connectors.Retryable(err) || attempt == 30 {
			t.Fatalf("Apply(%s) attempt %d: %v (kind %s)", a, attempt, err, connectors.KindOf(err))
		}
		time.Sleep(min(connectors.RetryAfter(err), 50*time.Millisecond) + 5*time.Millisecond)
	}
}

func snapshotRetrying(t testing.TB, ctx context.Context, c connectors.Connector) *connectors.State {
	t.Helper()
	for attempt := 1; ; attempt++ {
		st, err := c.Snapshot(ctx)
		if err == nil {
			return st
		}
		if !connectors.Retryable(err) || attempt == 30 {
			t.Fatalf("Snapshot attempt %d: %v (kind %s)", attempt, err, connectors.KindOf(err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
