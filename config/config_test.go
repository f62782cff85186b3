package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// src joins lines with "\n" so a case's line numbers can be read off.
func src(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// valid ends a config with the required keys, for cases that break
// something else first.
var validTail = []string{
	"policies: [p/*.yaml]",
	"connectors:",
	"  g:",
	"    type: memory",
}

func withTail(lines ...string) string { return src(append(lines, validTail...)...) }

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		src  string
		at   string // "line:col"
		msg  string // substring of Msg
	}{
		{"empty file", "", "1:1", "empty config"},
		{"only comments", "# nothing yet\n", "1:1", "empty config"},
		{"syntax error", src("version: 1", "policies: [a", "connectors: {}"), "3:1", "invalid YAML: ',' or ']' must be specified"},
		{"duplicate key", src("version: 1", "version: 1"), "2:1", `mapping key "version" already defined at line 1 column 1`},
		{"two documents", src("version: 1", "---", "version: 1"), "3:1", "only one YAML document"},
		{"top level is a list", src("- version: 1"), "1:1", "must be a mapping"},
		{"version missing", src("# header", "policies: [p/*.yaml]", "connectors: {g: {type: memory}}"), "2:1", `missing required key "version"`},
		{"version 2 hides the rest", src("version: 2", "whatever: 1", "policies: 3"), "1:10", "unsupported version 2"},
		{"version as string", withTail(`version: "1"`), "1:10", "version must be an integer, got a string"},
		{"version null", withTail("version:"), "1:9", "version must not be empty"},
		{"unknown top-level key", withTail("version: 1", "polices: [x]"), "2:1", `unknown key "polices" at the top level (did you mean "policies"?)`},
		{"unknown top-level key, no suggestion", withTail("version: 1", "listen: :8080"), "2:1", "known keys: version, data_dir"},
		{"unknown key in lifecycle", withTail("version: 1", "lifecycle:", "  retension: 1d"), "3:3", `unknown key "retension" in lifecycle (did you mean "retention"?)`},
		{"unknown key in safety", withTail("version: 1", "safety:", "  suspnd: {max: 1}"), "3:3", `unknown key "suspnd" in safety`},
		{"unknown key in threshold", withTail("version: 1", "safety:", "  revoke:", "    max: 1", "    maximum: 2"), "5:5", `unknown key "maximum" in safety.revoke`},
		{"unknown key in executor", withTail("version: 1", "executor:", "  concurency: 2"), "3:3", `unknown key "concurency" in executor (did you mean "concurrency"?)`},
		{"unknown key in connector", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  g:", "    type: memory", "    setings: {}"), "6:5", `unknown key "setings" in connectors.g (did you mean "settings"?)`},
		{"data_dir wrong type", withTail("version: 1", "data_dir: 5"), "2:11", "data_dir must be a string, got an integer"},
		{"data_dir empty string", withTail("version: 1", `data_dir: ""`), "2:11", "data_dir must not be empty"},
		{"timezone unknown", withTail("version: 1", "timezone: Mars/Olympus_Mons"), "2:11", `unknown timezone "Mars/Olympus_Mons"`},
		{"timezone Local", withTail("version: 1", "timezone: Local"), "2:11", "not Local"},
		{"timezone wrong type", withTail("version: 1", "timezone: [UTC]"), "2:11", "timezone must be a string, got a list"},
		{"policies missing", src("version: 1", "connectors:", "  g: {type: memory}"), "1:1", `missing required key "policies"`},
		{"policies a string", src("version: 1", "policies: p/*.yaml", "connectors: {g: {type: memory}}"), "2:11", "policies must be a list of glob patterns"},
		{"policies empty list", src("version: 1", "policies: []", "connectors: {g: {type: memory}}"), "2:11", "at least one glob"},
		{"policies null", src("version: 1", "policies:", "connectors: {g: {type: memory}}"), "2:10", "policies must not be empty"},
		{"policies entry not a string", src("version: 1", "policies:", "  - p/*.yaml", "  - 7", "connectors: {g: {type: memory}}"), "4:5", "policies entry must be a string, got an integer"},
		{"bad glob", src("version: 1", "policies: [p/*.yaml, 'p/[a-']", "connectors: {g: {type: memory}}"), "2:22", `bad glob pattern "p/[a-"`},
		{"bad policy_tests glob", withTail("version: 1", "policy_tests: ['[']"), "2:16", "policy_tests: bad glob"},
		{"connectors missing", src("version: 1", "policies: [p/*.yaml]"), "1:1", `missing required key "connectors"`},
		{"connectors a list", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  - g"), "4:3", "connectors must be a mapping"},
		{"connectors empty", src("version: 1", "policies: [p/*.yaml]", "connectors: {}"), "3:13", "at least one connector"},
		{"connector without type", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  github:", "    settings: {org: pp}"), "4:3", `missing required key "type" in connectors.github`},
		{"connector null", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  github:"), "4:3", `missing required key "type" in connectors.github`},
		{"connector type empty", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  github:", `    type: ""`), "5:11", "connectors.github.type must not be empty"},
		{"connector type not a string", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  github:", "    type: {name: x}"), "5:11", "connectors.github.type must be a string, got a mapping"},
		{"connector name upper case", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  GitHub:", "    type: memory"), "4:3", `connector name "GitHub" must be lower-case`},
		{"connector name with colon", src("version: 1", "policies: [p/*.yaml]", "connectors:", `  "git:hub":`, "    type: memory"), "4:3", `connector name "git:hub"`},
		{"connector name leading underscore", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  _g: {type: memory}"), "4:3", `connector name "_g"`},
		{"connector concurrency zero", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  g:", "    type: memory", "    concurrency: 0"), "6:18", "connectors.g.concurrency must be at least 1, got 0"},
		{"connector settings a list", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  g:", "    type: memory", "    settings: [a]"), "6:15", "connectors.g.settings must be a mapping, got a list"},
		{"lifecycle a list", withTail("version: 1", "lifecycle: [1]"), "2:12", "lifecycle must be a mapping, got a list"},
		{"bad duration", withTail("version: 1", "lifecycle:", "  retention: 5x"), "3:14", `lifecycle.retention: invalid duration "5x"`},
		{"duration without unit", withTail("version: 1", "lifecycle:", "  mover_grace: 5"), "3:16", `invalid duration "5"`},
		{"negative duration", withTail("version: 1", "lifecycle:", "  mover_grace: -1h"), "3:16", "lifecycle.mover_grace must not be negative"},
		{"duration wrong type", withTail("version: 1", "lifecycle:", "  retention: [30d]"), "3:14", "must be a duration such as 30s"},
		{"backoff_base zero", withTail("version: 1", "executor:", "  backoff_base: 0s"), "3:17", "executor.backoff_base must be greater than 0"},
		{"backoff_base above default max", withTail("version: 1", "executor:", "  backoff_base: 1m"), "3:17", "executor.backoff_base (1m) must not exceed executor.backoff_max (30s)"},
		{"backoff_max below base", withTail("version: 1", "executor:", "  backoff_base: 2s", "  backoff_max: 1s"), "4:16", "must not exceed executor.backoff_max (1s)"},
		{"executor concurrency zero", withTail("version: 1", "executor:", "  concurrency: 0"), "3:16", "executor.concurrency must be at least 1"},
		{"executor max_attempts negative", withTail("version: 1", "executor:", "  max_attempts: -2"), "3:17", "executor.max_attempts must be at least 1, got -2"},
		{"executor concurrency a float", withTail("version: 1", "executor:", "  concurrency: 1.5"), "3:16", "executor.concurrency must be an integer, got a number"},
		{"safety max negative", withTail("version: 1", "safety:", "  suspend: {max: -1}"), "3:18", "safety.suspend.max must not be negative"},
		{"safety max not an integer", withTail("version: 1", "safety:", "  delete: {max: 1.5}"), "3:17", "safety.delete.max must be an integer"},
		{"safety max_percent over 100", withTail("version: 1", "safety:", "  revoke:", "    max_percent: 100.5"), "4:18", "safety.revoke.max_percent must be between 0 and 100, got 100.5"},
		{"safety max_percent negative", withTail("version: 1", "safety:", "  revoke:", "    max_percent: -1"), "4:18", "between 0 and 100"},
		{"safety max_percent a string", withTail("version: 1", "safety:", "  revoke:", "    max_percent: ten"), "4:18", "safety.revoke.max_percent must be a number, got a string"},
		{"safety max_percent infinite", withTail("version: 1", "safety:", "  revoke:", "    max_percent: .inf"), "4:18", "finite"},
		{"safety threshold a scalar", withTail("version: 1", "safety:", "  revoke: 5"), "3:11", "safety.revoke must be a mapping, got an integer"},
		{"alias to nothing", withTail("version: 1", "data_dir: *nowhere"), "2:11", "alias *nowhere refers to no anchor"},
		{"merge of a scalar", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  g:", "    <<: 5", "    type: memory"), "5:9", "merge key (<<) needs a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("roster.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.src)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			if len(errs) != 1 {
				t.Errorf("got %d errors, want 1:\n%v", len(errs), err)
			}
			e := errs[0]
			if got := fmt.Sprintf("%d:%d", e.Line, e.Col); got != tt.at || e.File != "roster.yaml" {
				t.Errorf("position %s:%s, want roster.yaml:%s (%s)", e.File, got, tt.at, e.Msg)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, tt.msg)
			}
			if want := "roster.yaml:" + tt.at + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
			// The snippet is the offending source line.
			if e.Line > 0 && tt.src != "" {
				if want := strings.Split(tt.src, "\n")[e.Line-1]; e.Snippet != want {
					t.Errorf("snippet %q, want %q", e.Snippet, want)
				}
			}
		})
	}
}

func TestParseCollectsEveryProblem(t *testing.T) {
	in := src(
		"data_dir: 5", // 1
		"executor:",   // 2
		"  concurency: 3",
		"safety:", // 4
		"  suspend: {max: -1, max_percent: 101}",
		"connectors:", // 6
		"  Bad: {type: memory}",
		"  ok:",
		"    settings: {}",
	)
	_, err := Parse("roster.yaml", []byte(in))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d:%d %s", e.Line, e.Col, e.Msg))
	}
	want := []string{
		`1:1 missing required key "version"`,
		`1:1 missing required key "policies"`,
		`1:11 data_dir must be a string, got an integer`,
		`3:3 unknown key "concurency" in executor (did you mean "concurrency"?)`,
		`5:18 safety.suspend.max must not be negative`,
		`5:35 safety.suspend.max_percent must be between 0 and 100, got 101`,
		`7:3 connector name "Bad" must be lower-case letters, digits, '-' and '_', starting with a letter or digit (it prefixes entitlements, as in github:team/x)`,
		`8:3 missing required key "type" in connectors.ok`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As(*Error) did not find the first error")
	}
}

func TestErrorRendering(t *testing.T) {
	_, err := Parse("conf/roster.yaml", []byte(withTail("version: 1", "executor:", "  concurency: 2")))
	want := "conf/roster.yaml:3:3: unknown key \"concurency\" in executor (did you mean \"concurrency\"?)\n" +
		"    3 |   concurency: 2\n" +
		"      |   ^"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}

	tabbed := &Error{File: "f", Line: 2, Col: 4, Msg: "m", Snippet: "\tab: c"}
	if got := tabbed.Error(); got != "f:2:4: m\n    2 | \tab: c\n      | \t  ^" {
		t.Errorf("tab caret: %q", got)
	}
	if got := (&Error{File: "f", Msg: "m"}).Error(); got != "f: m" {
		t.Errorf("no position: %q", got)
	}
}

func TestErrorSnippetRedactsInlineSecrets(t *testing.T) {
	tests := []struct{ line, want string }{
		{"    token: ghp_abcdef123", "    token: <redacted>"},
		{"    token: env:GITHUB_TOKEN", "    token: env:GITHUB_TOKEN"},
		{`    api_key: "file:secrets/key"`, `    api_key: "file:secrets/key"`},
		{"    client_secret: s3cr3t   # rotate monthly", "    client_secret: <redacted>   # rotate monthly"},
		{"    auth: {password: hunter2, user: bob}", "    auth: {password: <redacted>, user: bob}"},
		{"    bot_token: [xoxb-1, xoxb-2]", "    bot_token: <redacted>"},
		{"    kinds: [team]", "    kinds: [team]"},
	}
	for _, tt := range tests {
		if got := redact(tt.line); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}

	// And end to end: a settings error on a line holding a pasted token.
	in := src(
		"version: 1",
		"policies: [p/*.yaml]",
		"connectors:",
		"  g:",
		"    type: memory",
		"    settings:",
		"      token: [ghp_abcdef123]",
	)
	c, err := Parse("roster.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Token string `yaml:"token"`
	}
	err = c.Connectors["g"].Settings.Decode(&s)
	if err == nil || strings.Contains(err.Error(), "ghp_") {
		t.Errorf("error must exist and not echo the token: %v", err)
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if c.Path != filepath.Join(dir, "full.yaml") || c.Dir != dir {
		t.Errorf("Path %q Dir %q", c.Path, c.Dir)
	}
	if c.Version != 1 || c.DataDir != filepath.Join(dir, "data") {
		t.Errorf("Version %d DataDir %q", c.Version, c.DataDir)
	}
	if c.Timezone != "America/Los_Angeles" || c.Location.String() != "America/Los_Angeles" {
		t.Errorf("Timezone %q Location %v", c.Timezone, c.Location)
	}
	if !reflect.DeepEqual(c.Policies, []string{"policies/*.yaml"}) || !reflect.DeepEqual(c.PolicyTests, []string{"tests/*.yaml"}) {
		t.Errorf("Policies %q PolicyTests %q", c.Policies, c.PolicyTests)
	}
	if want := (Lifecycle{MoverGrace: Duration(72 * time.Hour), Retention: Duration(30 * 24 * time.Hour)}); c.Lifecycle != want {
		t.Errorf("Lifecycle %+v, want %+v", c.Lifecycle, want)
	}
	if c.Safety != DefaultSafety() {
		t.Errorf("Safety %+v", c.Safety)
	}
	if want := (Executor{Concurrency: 4, MaxAttempts: 6, BackoffBase: Duration(200 * time.Millisecond), BackoffMax: Duration(30 * time.Second)}); c.Executor != want {
		t.Errorf("Executor %+v", c.Executor)
	}
	if !reflect.DeepEqual(c.ConnectorNames, []string{"github", "slack"}) || len(c.Connectors) != 2 {
		t.Fatalf("ConnectorNames %q", c.ConnectorNames)
	}
	gh, sl := c.Connectors["github"], c.Connectors["slack"]
	if gh.Name != "github" || gh.Type != "memory" || gh.Concurrency != 2 {
		t.Errorf("github %+v", gh)
	}
	if sl.Name != "slack" || sl.Type != "memory" || sl.Concurrency != 4 {
		t.Errorf("slack: %+v (concurrency should inherit executor.concurrency)", sl)
	}
	var s struct {
		Kinds []string `yaml:"kinds"`
		Token string   `yaml:"token"`
	}
	if err := gh.Settings.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Kinds, []string{"team", "repo"}) || s.Token != "env:GITHUB_TOKEN" {
		t.Errorf("github settings %+v", s)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	want := &Config{
		Version:    1,
		DataDir:    filepath.Join(dir, "data"),
		Timezone:   DefaultTimezone,
		Location:   time.UTC,
		Policies:   []string{"policies/*.yaml"},
		Lifecycle:  Lifecycle{MoverGrace: DefaultMoverGrace, Retention: DefaultRetention},
		Safety:     DefaultSafety(),
		Executor:   Executor{Concurrency: DefaultConcurrency, MaxAttempts: DefaultMaxAttempts, BackoffBase: DefaultBackoffBase, BackoffMax: DefaultBackoffMax},
		Connectors: c.Connectors,
		Server: Server{
			Listen: "127.0.0.1:8080", ReadTimeout: Duration(10 * time.Second), WriteTimeout: Duration(30 * time.Second),
			IdleTimeout: Duration(time.Minute), MaxBody: 1 << 20, ReconcileInterval: Duration(time.Hour), TickInterval: Duration(time.Minute),
		},
		Path:        filepath.Join(dir, "minimal.yaml"),
		Dir:         dir,
		PolicyTests: nil,
	}
	want.ConnectorNames = []string{"demo"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	demo := c.Connectors["demo"]
	if demo.Concurrency != DefaultConcurrency || !demo.Settings.IsZero() {
		t.Errorf("demo %+v", demo)
	}
}

func TestExplicitZeroAndPartialBlocks(t *testing.T) {
	c, err := Parse("roster.yaml", []byte(withTail(
		"version: 1",
		"lifecycle:",
		"  retention: 0",
		"safety:",
		"  suspend: {max: 0}", // max_percent keeps its default
		"  delete:",           // null block: defaults
		"executor:",
		"  backoff_max: 1d12h",
		"x-unused: {anything: [goes]}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Lifecycle.Retention != 0 {
		t.Errorf("retention %v, want 0 (never delete)", c.Lifecycle.Retention)
	}
	if want := (Threshold{Max: 0, MaxPercent: 10}); c.Safety.Suspend != want {
		t.Errorf("suspend %+v, want %+v", c.Safety.Suspend, want)
	}
	if c.Safety.Delete != DefaultSafety().Delete || c.Safety.Revoke != DefaultSafety().Revoke {
		t.Errorf("safety %+v", c.Safety)
	}
	if c.Executor.BackoffMax.Std() != 36*time.Hour {
		t.Errorf("backoff_max %v", c.Executor.BackoffMax)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c, err := Load("testdata/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gh, eu := c.Connectors["github"], c.Connectors["github-eu"]
	if gh.Type != "memory" || gh.Concurrency != 3 || eu.Type != "memory" || eu.Concurrency != 1 {
		t.Errorf("github %q/%d github-eu %q/%d", gh.Type, gh.Concurrency, eu.Type, eu.Concurrency)
	}
	for _, cn := range []*Connector{gh, eu} {
		var s struct {
			Kinds []string `yaml:"kinds"`
			Token string   `yaml:"token"`
		}
		if err := cn.Settings.Decode(&s); err != nil {
			t.Fatalf("%s: %v", cn.Name, err)
		}
		if !reflect.DeepEqual(s.Kinds, []string{"team", "repo"}) {
			t.Errorf("%s kinds %q (alias to an anchor outside settings)", cn.Name, s.Kinds)
		}
	}
}

// projection is a Config without the parts that hold parse trees.
func projection(t *testing.T, c *Config) map[string]any {
	t.Helper()
	conns := map[string]any{}
	for name, cn := range c.Connectors {
		var settings map[string]any
		if err := cn.Settings.Decode(&settings); err != nil {
			t.Fatal(err)
		}
		conns[name] = []any{cn.Name, cn.Type, cn.Concurrency, cn.concurrencySet, settings}
	}
	cp := *c
	cp.Connectors = nil
	cp.Location = nil
	var scim any
	if c.SCIM != nil {
		var tokens []string
		for _, t := range c.SCIM.Tokens {
			tokens = append(tokens, t.Name+"="+t.Secret)
		}
		scim = []any{tokens, c.SCIM.Mapping}
		cp.SCIM = nil
	}
	var admin []string
	for _, t := range c.Admin.Tokens {
		admin = append(admin, t.Name+"="+t.Secret+"="+t.Role)
	}
	admin = append(admin, "socket="+c.Admin.Socket)
	cp.Admin = Admin{}
	return map[string]any{"config": cp, "location": c.Location.String(), "connectors": conns, "scim": scim, "admin": admin}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, file := range []string{"testdata/full.yaml", "testdata/minimal.yaml", "testdata/anchors.yaml"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c1, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			out1, err := c1.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			c2, err := Parse(file, out1)
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, out1)
			}
			if a, b := projection(t, c1), projection(t, c2); !reflect.DeepEqual(a, b) {
				t.Errorf("round trip differs:\n%+v\n%+v", a, b)
			}
			out2, err := c2.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(out1) != string(out2) {
				t.Errorf("Marshal is not a fixed point:\n%s\n---\n%s", out1, out2)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

func TestWithDataDir(t *testing.T) {
	c, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	orig := c.DataDir
	c2, err := c.WithDataDir("elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if c2.DataDir != filepath.Join(wd, "elsewhere") {
		t.Errorf("DataDir %q", c2.DataDir)
	}
	if c.DataDir != orig {
		t.Errorf("WithDataDir changed the original")
	}
	if c2.Connectors["demo"] != c.Connectors["demo"] || c2.Timezone != c.Timezone {
		t.Errorf("WithDataDir lost the rest of the config")
	}
}

func TestConnectorErrorf(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New(`unknown type "memory"`)
	err = c.Connectors["slack"].Errorf("open: %w", cause)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, cause) {
		t.Fatalf("got %T %v", err, err)
	}
	line := lineOf(t, "testdata/full.yaml", "  slack:")
	if e.Line != line || e.Col != 3 || e.Snippet != "  slack:" {
		t.Errorf("at %d:%d %q, want %d:3", e.Line, e.Col, e.Snippet, line)
	}
	if !strings.HasPrefix(err.Error(), fmt.Sprintf(`testdata/full.yaml:%d:3: connector "slack": open: unknown type "memory"`, line)) {
		t.Errorf("Error() = %q", err.Error())
	}
}

// lineOf returns the 1-based number of the first line of file equal to s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if l == s {
			return i + 1
		}
	}
	t.Fatalf("%s has no line %q", file, s)
	return 0
}

func BenchmarkParseFull(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Parse("testdata/full.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
