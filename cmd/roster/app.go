package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/github"
	"github.com/rosterhq/roster/connectors/memory"
	"github.com/rosterhq/roster/connectors/slack"
	"github.com/rosterhq/roster/lifecycle"
	"github.com/rosterhq/roster/policy"
)

// registry lists the connector types this binary knows. Explicit, on
// purpose: no package registers itself.
func registry() connectors.Registry {
	return connectors.Registry{
		"github": github.Open,
		"memory": memory.Open,
		"slack":  slack.Open,
	}
}

// globals are the flags every command shares.
type globals struct {
	configPath string
	dataDir    string
	verbose    bool
	// server and token reach a remote `roster serve` (--server, --token
	// or ROSTER_TOKEN) instead of the data dir's.
	server string
	token  string
	now    func() time.Time // the clock; the demo moves it
	logger *slog.Logger
	// onWait, when set, hears every wait a connector makes before a retry
	// (serve counts them in its metrics).
	onWait func(app string, status int, wait time.Duration)
}

func (g *globals) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// loadConfig reads roster.yaml and applies --data-dir.
func (g *globals) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w\n(no config file; pass --config PATH, e.g. --config testdata/piedpiper/roster.yaml, or run `roster demo`)", err)
		}
		return nil, err
	}
	if g.dataDir != "" {
		return cfg.WithDataDir(g.dataDir)
	}
	return cfg, nil
}

// lockWait is how long opening the data file waits for another process
// to release it.
const lockWait = time.Second

// lockedError is a data file another process holds.
type lockedError struct{ path string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("%s is locked by another process (a running `roster serve` or another roster command); stop it or wait, then retry", e.path)
}

// openDB opens roster.db in the data dir, failing within lockWait with a
// *lockedError when another process holds it.
func openDB(dir string) (*bolt.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, "roster.db")
	db, err := bolt.Open(path, 0o600, lifecycle.DBOptions(lockWait))
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &lockedError{path: path}
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// openConnectors builds every configured instance.
//
// commits, when not nil, is the group commit in-process connectors share
// with the engine for their writes to db.
func openConnectors(ctx context.Context, cfg *config.Config, db *bolt.DB, commits *lifecycle.GroupCommit, g *globals) ([]connectors.Connector, error) {
	reg := registry()
	var out []connectors.Connector
	for _, name := range cfg.ConnectorNames {
		ci := cfg.Connectors[name]
		if _, ok := reg[ci.Type]; !ok {
			return nil, ci.Errorf("unknown type %q (known: %v)", ci.Type, reg.Types())
		}
		env := connectors.Env{
			Name: name, Settings: ci.Settings, Secret: cfg.ResolveSecret,
			Logger: g.logger.With("connector", name), DB: db, Now: g.clock,
		}
		if g.onWait != nil {
			app := name
			env.OnWait = func(status int, wait time.Duration) { g.onWait(app, status, wait) }
		}
		if commits != nil {
			env.Update = commits.Update
		}
		c, err := reg.Open(ctx, ci.Type, env)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func catalog(apps []connectors.Connector) policy.Catalog {
	cat := policy.Catalog{}
	for _, c := range apps {
		cat[c.Name()] = c.Kinds()
	}
	return cat
}

// loadPolicy loads a policy set: the config's, or the files of dir.
func loadPolicy(cfg *config.Config, apps []connectors.Connector, dir string) (*policy.Set, error) {
	var files []string
	var err error
	if dir != "" {
		files, err = policy.Expand([]string{dir}, ".")
	} else {
		files, err = cfg.PolicyFiles()
	}
	if err != nil {
		return nil, err
	}
	return policy.Load(files, policy.Options{Catalog: catalog(apps), Location: cfg.Location, DefaultGrace: cfg.Lifecycle.MoverGrace.Std()})
}

// session is an open data file with its engine.
type session struct {
	cfg    *config.Config
	db     *bolt.DB
	apps   []connectors.Connector
	engine *lifecycle.Engine
}

func (s *session) Close() error { return s.db.Close() }

// open loads config, data file, connectors and policy, and builds the
// engine. A policy that does not load stops here: nothing runs on it.
func (g *globals) open(ctx context.Context) (*session, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	db, err := openDB(cfg.DataDir)
	if err != nil {
		if le := (*lockedError)(nil); errors.As(err, &le) {
			return nil, lockedHelp(le, cfg)
		}
		return nil, err
	}
	s, err := g.openSession(ctx, cfg, db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openSession loads connectors and policy on an open data file and builds
// the engine. A policy that does not load stops here: nothing runs on it.
// On error the caller still owns db.
func (g *globals) openSession(ctx context.Context, cfg *config.Config, db *bolt.DB) (*session, error) {
	s := &session{cfg: cfg, db: db}
	fail := func(err error) (*session, error) { return nil, err }
	var err error
	commits := lifecycle.NewGroupCommit(db)
	if s.apps, err = openConnectors(ctx, cfg, db, commits, g); err != nil {
		return fail(err)
	}
	pol, err := loadPolicy(cfg, s.apps, "")
	if err != nil {
		return fail(err)
	}
	perApp := map[string]int{}
	for name, c := range cfg.Connectors {
		perApp[name] = c.Concurrency
	}
	s.engine, err = lifecycle.New(lifecycle.Options{
		DB: db, Policy: pol, Apps: s.apps, Location: cfg.Location,
		Retention: cfg.Lifecycle.Retention.Std(),
		Safety: lifecycle.Safety{
			Suspend: threshold(cfg.Safety.Suspend), Revoke: threshold(cfg.Safety.Revoke), Delete: threshold(cfg.Safety.Delete),
		},
		Executor: lifecycle.ExecutorOptions{
			Concurrency: cfg.Executor.Concurrency, PerApp: perApp, MaxAttempts: cfg.Executor.MaxAttempts,
			BackoffBase: cfg.Executor.BackoffBase.Std(), BackoffMax: cfg.Executor.BackoffMax.Std(),
		},
		Now: g.clock, Logger: g.logger, Commits: commits,
	})
	if err != nil {
		return fail(err)
	}
	return s, nil
}

func threshold(t config.Threshold) lifecycle.Threshold {
	return lifecycle.Threshold{Max: t.Max, MaxPercent: t.MaxPercent}
}
