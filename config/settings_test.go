package config

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The connectors package's interface, restated: config must satisfy it
// without importing connectors.
var _ interface{ Decode(v any) error } = Settings{}

type ghSettings struct {
	Org    string   `yaml:"org"`
	Kinds  []string `yaml:"kinds"`
	Token  string   `yaml:"token"`
	Limits struct {
		PerPage int `yaml:"per_page"`
	} `yaml:"limits"`
	Timeout time.Duration `yaml:"timeout"`
}

// settingsHeader puts the settings block's first key on line 7.
var settingsHeader = []string{
	"version: 1",           // 1
	"policies: [p/*.yaml]", // 2
	"connectors:",          // 3
	"  github:",            // 4
	"    type: github",     // 5
	"    settings:",        // 6
}

func parseSettings(t *testing.T, lines ...string) Settings {
	t.Helper()
	c, err := Parse("roster.yaml", []byte(src(append(append([]string{}, settingsHeader...), lines...)...)))
	if err != nil {
		t.Fatal(err)
	}
	return c.Connectors["github"].Settings
}

func TestSettingsDecode(t *testing.T) {
	s := parseSettings(t,
		"      org: piedpiper",
		"      kinds: [team, repo]",
		"      token: env:GITHUB_TOKEN",
		"      limits:",
		"        per_page: 50",
		"      timeout: 10s",
	)
	var got ghSettings
	if err := s.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Org != "piedpiper" || strings.Join(got.Kinds, ",") != "team,repo" || got.Token != "env:GITHUB_TOKEN" ||
		got.Limits.PerPage != 50 || got.Timeout != 10*time.Second {
		t.Errorf("decoded %+v", got)
	}
	if s.IsZero() {
		t.Errorf("IsZero on a filled block")
	}
}

func TestSettingsDecodeKeepsDefaults(t *testing.T) {
	s := parseSettings(t, "      org: piedpiper")
	got := ghSettings{Org: "default-org", Token: "env:DEFAULT"}
	got.Limits.PerPage = 100
	if err := s.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Org != "piedpiper" || got.Token != "env:DEFAULT" || got.Limits.PerPage != 100 {
		t.Errorf("decoded %+v; absent keys must keep their defaults", got)
	}
}

func TestSettingsDecodeStrict(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		at    string
		msg   string
	}{
		{"unknown key", []string{"      org: pp", "      orgg: pp"}, "8:7", `connector "github" settings: unknown field "orgg"`},
		{"unknown nested key", []string{"      org: pp", "      limits:", "        per_page: 5", "        burst: 9"}, "10:9", `unknown field "burst"`},
		{"scalar for a list", []string{"      kinds: team"}, "7:14", "string was used where sequence is expected"},
		{"list for a string", []string{"      org: [a, b]"}, "7:12", "cannot unmarshal"},
		{"string for an int", []string{"      limits: {per_page: many}"}, "7:26", "cannot unmarshal string"},
		{"scalar for a struct", []string{"      limits: 5"}, "7:15", "where mapping is expected"},
		// A custom unmarshaler's error has no position: the settings key.
		{"bad duration", []string{"      timeout: soon"}, "6:5", `settings: time: invalid duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := parseSettings(t, tt.lines...)
			var got ghSettings
			err := s.Decode(&got)
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("got %T %v, want *Error", err, err)
			}
			if pos := fmt.Sprintf("%d:%d", e.Line, e.Col); pos != tt.at || e.File != "roster.yaml" {
				t.Errorf("at %s:%s, want roster.yaml:%s (%s)", e.File, pos, tt.at, e.Msg)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, tt.msg)
			}
			all := append(append([]string{}, settingsHeader...), tt.lines...)
			if e.Snippet != all[e.Line-1] {
				t.Errorf("snippet %q, want %q", e.Snippet, all[e.Line-1])
			}
			if !strings.HasPrefix(err.Error(), "roster.yaml:"+tt.at+": ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestSettingsAbsentOrEmpty(t *testing.T) {
	for name, lines := range map[string][]string{
		"no settings key": nil,
		"null settings":   {},
	} {
		t.Run(name, func(t *testing.T) {
			header := settingsHeader
			if lines == nil {
				header = settingsHeader[:5]
			}
			c, err := Parse("roster.yaml", []byte(src(header...)))
			if err != nil {
				t.Fatal(err)
			}
			s := c.Connectors["github"].Settings
			got := ghSettings{Org: "kept"}
			if err := s.Decode(&got); err != nil || got.Org != "kept" || !s.IsZero() {
				t.Errorf("Decode = %v, %+v, IsZero %v", err, got, s.IsZero())
			}
		})
	}
	var zero Settings
	var v ghSettings
	if err := zero.Decode(&v); err != nil {
		t.Errorf("zero Settings: %v", err)
	}
	s := parseSettings(t, "      org: x")
	if err := s.Decode(v); err == nil {
		t.Errorf("Decode into a non-pointer must fail")
	}
	if err := s.Decode(nil); err == nil {
		t.Errorf("Decode into nil must fail")
	}
}

func TestSettingsDecodeConcurrently(t *testing.T) {
	s := parseSettings(t, "      org: pp", "      kinds: [a, b, c]")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			var got ghSettings
			if err := s.Decode(&got); err != nil {
				errs <- err
			} else if got.Org != "pp" || len(got.Kinds) != 3 {
				errs <- fmt.Errorf("decoded %+v", got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
