package config

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Duration is a time.Duration written in roster.yaml either in Go syntax
// ("72h", "1h30m", "200ms") or with a day suffix ("30d", "1d12h", "1.5d");
// a day is 24 hours. A bare 0 is accepted; any other bare number is an
// error because it has no unit.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d in the shortest form ParseDuration reads back to the
// same value: whole days as "30d", the rest in Go syntax without zero
// components ("1d12h", "1h30m", "200ms", "0s").
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	v := time.Duration(d)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
		if v == math.MinInt64 {
			// Cannot negate; Go's own format round-trips.
			return v.String()
		}
		v = -v
	}
	const day = 24 * time.Hour
	if days := v / day; days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		v -= days * day
		if v == 0 {
			return b.String()
		}
	}
	s := v.String()
	if v >= time.Minute {
		s = strings.TrimSuffix(s, "m0s")
		if strings.HasSuffix(s, "h0") { // "12h0" after trimming "m0s"
			s = strings.TrimSuffix(s, "0")
		} else if !strings.HasSuffix(s, "s") {
			s += "m"
		}
	}
	b.WriteString(s)
	return b.String()
}

// MarshalText implements encoding.TextMarshaler with String's format.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses Go duration syntax extended with a "d" (24 hour)
// unit: a sign, then one or more decimal numbers each with a unit among
// ns, us (or µs), ms, s, m, h, d. "0" alone is zero.
func ParseDuration(s string) (Duration, error) {
	bad := func() (Duration, error) {
		return 0, fmt.Errorf("invalid duration %q (write e.g. 200ms, 30s, 15m, 72h, 30d or 1d12h)", s)
	}
	rest := s
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	if rest == "0" {
		return 0, nil
	}
	if rest == "" {
		return bad()
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] == '.' || (rest[j] >= '0' && rest[j] <= '9')) {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return bad()
		}
		var part time.Duration
		if unit == "d" {
			h, err := time.ParseDuration(num + "h")
			if err != nil || h > math.MaxInt64/24 {
				return bad()
			}
			part = h * 24
		} else {
			v, err := time.ParseDuration(num + unit)
			if err != nil {
				return bad()
			}
			part = v
		}
		if total > math.MaxInt64-part {
			return bad()
		}
		total += part
	}
	if neg {
		total = -total
	}
	return Duration(total), nil
}
