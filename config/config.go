package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/goccy/go-yaml"
)

// Version is the only roster.yaml version this package reads.
const Version = 1

// Defaults for every optional key, in one place. Safety threshold defaults
// are in DefaultSafety.
const (
	DefaultDataDir     = "./data" // relative to the config file's directory
	DefaultTimezone    = "UTC"
	DefaultMoverGrace  = Duration(0)
	DefaultRetention   = Duration(30 * 24 * time.Hour)
	DefaultConcurrency = 4
	DefaultMaxAttempts = 6
	DefaultBackoffBase = Duration(200 * time.Millisecond)
	DefaultBackoffMax  = Duration(30 * time.Second)
)

// DefaultSafety returns the mass-change thresholds used for every block or
// key that roster.yaml leaves out.
func DefaultSafety() Safety {
	return Safety{
		Suspend: Threshold{Max: 10, MaxPercent: 10},
		Revoke:  Threshold{Max: 100, MaxPercent: 20},
		Delete:  Threshold{Max: 10, MaxPercent: 5},
	}
}

// Config is a loaded, validated roster.yaml with every default applied.
// Treat it as read-only once loaded; WithDataDir returns a changed copy.
type Config struct {
	// Version is the file format version; always 1.
	Version int
	// DataDir is the absolute directory holding roster.db and the admin
	// socket. In the file it is relative to the file's directory.
	DataDir string
	// Timezone is the IANA name of the company timezone (start and end
	// dates, expiry dates); Location is it resolved.
	Timezone string
	Location *time.Location
	// Policies and PolicyTests are glob patterns as written in the file,
	// relative to Dir unless absolute; PolicyFiles and PolicyTestFiles
	// expand them.
	Policies    []string
	PolicyTests []string
	Lifecycle   Lifecycle
	Safety      Safety
	Executor    Executor
	// Connectors are the named connector instances; ConnectorNames lists
	// their names sorted.
	Connectors     map[string]*Connector
	ConnectorNames []string
	// Server configures `roster serve`; every field has its default when
	// the block is absent.
	Server Server
	// SCIM configures the SCIM 2.0 endpoint of `roster serve`; nil when
	// the file has no scim block.
	SCIM *SCIM
	// Admin configures the admin API of `roster serve` (its Unix socket
	// and network tokens); the zero value when the file has no admin
	// block.
	Admin Admin
	// Path is the absolute path of the file, Dir its directory.
	Path string
	Dir  string
}

// Lifecycle holds the engine's timing defaults.
type Lifecycle struct {
	// MoverGrace is how long a mover keeps the old role's access (policy
	// may override it per role). Default 0.
	MoverGrace Duration
	// Retention is how long after termination a leaver's accounts are
	// deleted; 0 means never delete. Default 30d.
	Retention Duration
}

// Safety holds the mass-change thresholds, one per kind of action. A plan
// over any limit waits for `roster approve`.
type Safety struct {
	Suspend Threshold
	Revoke  Threshold
	Delete  Threshold
}

// Threshold bounds how many workers one kind of action in a plan may
// affect without an explicit approval. A block or key missing from roster.yaml takes its
// default (DefaultSafety); an explicit 0 means every action of that kind
// needs approval. There is no "unlimited": write a large number.
type Threshold struct {
	// Max is the largest number of distinct workers affected.
	Max int
	// MaxPercent is the largest share, 0..100, of the managed workers
	// (active, pending, and those leaving in the plan) affected.
	MaxPercent float64
}

// Executor tunes how queued actions are carried out.
type Executor struct {
	// Concurrency is the default number of concurrent actions per
	// connector instance (at least 1). Default 4.
	Concurrency int
	// MaxAttempts is how many times an action failing with a transient
	// error is tried (at least 1). Default 6.
	MaxAttempts int
	// BackoffBase and BackoffMax bound the exponential backoff between
	// attempts (0 < BackoffBase <= BackoffMax). Defaults 200ms and 30s.
	BackoffBase Duration
	BackoffMax  Duration
}

// Connector is one named connector instance.
type Connector struct {
	// Name is the instance name, the key under `connectors:`; it prefixes
	// the instance's entitlements ("github:team/x").
	Name string
	// Type is the connector type ("memory", "github"); the registry checks
	// that it exists when the instance is opened.
	Type string
	// Concurrency is the number of concurrent actions for this instance:
	// its own setting or else Executor.Concurrency.
	Concurrency int
	// Settings is the type-specific block, decoded by the connector.
	Settings Settings

	concurrencySet bool
	src            *source
	line, col      int // position of the name key
}

// Errorf returns an *Error positioned at the instance's entry in
// roster.yaml, for problems found after loading (an unknown type, a
// setting the connector rejects). %w in format is honoured by errors.Is
// and errors.As.
func (c *Connector) Errorf(format string, args ...any) error {
	cause := fmt.Errorf(format, args...)
	e := c.src.errorAt(c.line, c.col, fmt.Sprintf("connector %q: %s", c.Name, cause))
	e.err = cause
	return e
}

// Load reads the config file at path and returns it validated with
// defaults applied. A read failure is returned wrapped; every problem in
// the content is returned together as Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for content already read. path names the file in errors
// and anchors relative paths (data_dir, globs, file: secrets); it is not
// read.
func Parse(path string, data []byte) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	d := &decoder{src: &source{file: path, src: data}}
	c := d.decode(data, abs)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return c, nil
}

// WithDataDir returns a copy of c whose DataDir is dir (for a --data-dir
// flag); a relative dir is relative to the current directory.
func (c *Config) WithDataDir(dir string) (*Config, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: data dir %s: %w", dir, err)
	}
	cp := *c
	cp.DataDir = abs
	return &cp, nil
}

// PolicyFiles expands the policies globs: absolute paths of regular files
// (directories are skipped), sorted and without duplicates. A pattern that
// matches no file is an error wrapping ErrNoMatch that names the pattern.
func (c *Config) PolicyFiles() ([]string, error) {
	return c.expand("policies", c.Policies)
}

// PolicyTestFiles expands the policy_tests globs like PolicyFiles; with no
// patterns it returns nil.
func (c *Config) PolicyTestFiles() ([]string, error) {
	return c.expand("policy_tests", c.PolicyTests)
}

func (c *Config) expand(key string, patterns []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range patterns {
		full := p
		if !filepath.IsAbs(full) {
			full = filepath.Join(c.Dir, full)
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			return nil, fmt.Errorf("config: %s: pattern %q: %w", key, p, err)
		}
		n := 0
		for _, m := range matches {
			fi, err := os.Stat(m)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // dangling symlink
				}
				return nil, fmt.Errorf("config: %s: %w", key, err)
			}
			if fi.IsDir() {
				continue
			}
			n++
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("config: %s: pattern %q (in %s): %w", key, p, c.Dir, ErrNoMatch)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Marshal renders c as roster.yaml with every default written out (data_dir
// absolute, durations in Duration.String form, settings blocks as written,
// comments dropped). Parse reads the result back to an equal Config.
func (c *Config) Marshal() ([]byte, error) {
	th := func(t Threshold) yaml.MapSlice {
		return yaml.MapSlice{{Key: "max", Value: t.Max}, {Key: "max_percent", Value: t.MaxPercent}}
	}
	conns := yaml.MapSlice{}
	for _, name := range c.ConnectorNames {
		cn := c.Connectors[name]
		entry := yaml.MapSlice{{Key: "type", Value: cn.Type}}
		if cn.concurrencySet {
			entry = append(entry, yaml.MapItem{Key: "concurrency", Value: cn.Concurrency})
		}
		if !cn.Settings.IsZero() {
			v, err := cn.Settings.value()
			if err != nil {
				return nil, err
			}
			entry = append(entry, yaml.MapItem{Key: "settings", Value: v})
		}
		conns = append(conns, yaml.MapItem{Key: name, Value: entry})
	}
	doc := yaml.MapSlice{
		{Key: "version", Value: c.Version},
		{Key: "data_dir", Value: c.DataDir},
		{Key: "timezone", Value: c.Timezone},
		{Key: "policies", Value: c.Policies},
	}
	if len(c.PolicyTests) > 0 {
		doc = append(doc, yaml.MapItem{Key: "policy_tests", Value: c.PolicyTests})
	}
	doc = append(doc,
		yaml.MapItem{Key: "lifecycle", Value: yaml.MapSlice{
			{Key: "mover_grace", Value: c.Lifecycle.MoverGrace.String()},
			{Key: "retention", Value: c.Lifecycle.Retention.String()},
		}},
		yaml.MapItem{Key: "safety", Value: yaml.MapSlice{
			{Key: "suspend", Value: th(c.Safety.Suspend)},
			{Key: "revoke", Value: th(c.Safety.Revoke)},
			{Key: "delete", Value: th(c.Safety.Delete)},
		}},
		yaml.MapItem{Key: "executor", Value: yaml.MapSlice{
			{Key: "concurrency", Value: c.Executor.Concurrency},
			{Key: "max_attempts", Value: c.Executor.MaxAttempts},
			{Key: "backoff_base", Value: c.Executor.BackoffBase.String()},
			{Key: "backoff_max", Value: c.Executor.BackoffMax.String()},
		}},
		yaml.MapItem{Key: "connectors", Value: conns},
		yaml.MapItem{Key: "server", Value: c.Server.marshal()},
	)
	if c.SCIM != nil {
		doc = append(doc, yaml.MapItem{Key: "scim", Value: c.SCIM.marshal()})
	}
	if a := c.Admin.marshal(); len(a) > 0 {
		doc = append(doc, yaml.MapItem{Key: "admin", Value: a})
	}
	out, err := yaml.MarshalWithOptions(doc, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	return out, nil
}
