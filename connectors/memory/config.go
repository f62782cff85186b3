package memory

import (
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// Config is the settings block of one memory instance in roster.yaml.
type Config struct {
	// Kinds are the entitlement kinds the app offers. A kind named
	// "account" declares the account-level roles.
	Kinds []connectors.KindSpec `json:"kinds" yaml:"kinds"`
	// Latency is how long every call takes: Snapshot sleeps it first; an
	// Apply makes its change and then waits what is left of it, as a
	// remote API's call would include its own work. The wait ends early
	// with the context (after a change, the caller then sees an error, as
	// with any lost answer, and retries safely).
	Latency Duration `json:"latency,omitempty" yaml:"latency,omitempty"`
	// FailureRate is the probability that a call fails with a Transient
	// error before changing anything.
	FailureRate float64 `json:"failure_rate,omitempty" yaml:"failure_rate,omitempty"`
	// LostResponseRate is the probability that an Apply makes its change
	// and then returns a Transient error anyway, as when a response is lost.
	LostResponseRate float64 `json:"lost_response_rate,omitempty" yaml:"lost_response_rate,omitempty"`
	// Seed seeds the random failures, for repeatable runs; 0 seeds from
	// the runtime's random source.
	Seed int64 `json:"seed,omitempty" yaml:"seed,omitempty"`
	// SuspendDropsGrants makes suspending an account remove its
	// entitlements, as Slack does on deactivation.
	SuspendDropsGrants bool `json:"suspend_drops_grants,omitempty" yaml:"suspend_drops_grants,omitempty"`
}

// Duration is a time.Duration written as text ("50ms", "1s") in settings.
type Duration time.Duration

// UnmarshalText parses a Go duration string such as "50ms".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, as in \"50ms\" or \"2s\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

var kindName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// Validate checks the settings; the error names the offending field.
func (c *Config) Validate() error {
	seen := map[string]int{}
	for i, k := range c.Kinds {
		if !kindName.MatchString(k.Name) {
			return fmt.Errorf("kinds[%d]: name %q must match [a-z][a-z0-9_-]*", i, k.Name)
		}
		if j, dup := seen[k.Name]; dup {
			return fmt.Errorf("kinds[%d]: kind %q is already declared by kinds[%d]", i, k.Name, j)
		}
		seen[k.Name] = i
		roles := map[string]bool{}
		for _, r := range k.Roles {
			if r == "" {
				return fmt.Errorf("kinds[%d] (%s): empty role", i, k.Name)
			}
			if roles[r] {
				return fmt.Errorf("kinds[%d] (%s): role %q listed twice", i, k.Name, r)
			}
			roles[r] = true
		}
	}
	if c.Latency < 0 {
		return fmt.Errorf("latency: %s is negative", time.Duration(c.Latency))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"failure_rate", c.FailureRate}, {"lost_response_rate", c.LostResponseRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s: %v is not a probability between 0 and 1", r.name, r.v)
		}
	}
	return nil
}
