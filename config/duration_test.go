package config

import (
	"math"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	good := map[string]time.Duration{
		"0":         0,
		"0s":        0,
		"-0":        0,
		"200ms":     200 * time.Millisecond,
		"1.5s":      1500 * time.Millisecond,
		"1us":       time.Microsecond,
		"1µs":       time.Microsecond,
		"72h":       72 * time.Hour,
		"1h30m":     90 * time.Minute,
		"30d":       30 * day,
		"1d12h":     36 * time.Hour,
		"1.5d":      36 * time.Hour,
		"2d3h4m5s":  2*day + 3*time.Hour + 4*time.Minute + 5*time.Second,
		"-2d":       -2 * day,
		"+1h":       time.Hour,
		"106751d":   106751 * day,
		"12h1d":     36 * time.Hour, // order is free, as in Go
		"0.000001s": time.Microsecond,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got.Std() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "d", "1x", "1d-2h", "--1h", "1.2.3h", "106752d", "9223372036854775807d", " 1h", "1h ", "1 d", "1D", "+", "-"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestDurationString(t *testing.T) {
	const day = 24 * time.Hour
	tests := map[time.Duration]string{
		0:                                        "0s",
		time.Nanosecond:                          "1ns",
		200 * time.Millisecond:                   "200ms",
		30 * time.Second:                         "30s",
		90 * time.Second:                         "1m30s",
		10 * time.Minute:                         "10m",
		70 * time.Minute:                         "1h10m",
		time.Hour + 30*time.Second:               "1h0m30s",
		10 * time.Hour:                           "10h",
		12 * time.Hour:                           "12h",
		36 * time.Hour:                           "1d12h",
		72 * time.Hour:                           "3d",
		30 * day:                                 "30d",
		day + time.Nanosecond:                    "1d1ns",
		-36 * time.Hour:                          "-1d12h",
		-time.Minute:                             "-1m",
		day + time.Minute + 500*time.Millisecond: "1d1m0.5s",
	}
	for d, want := range tests {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
}

func TestDurationRoundTrip(t *testing.T) {
	values := []time.Duration{math.MaxInt64, math.MinInt64 + 1, 1, -1, 59 * time.Second, 61 * time.Minute, 25 * time.Hour, 49*time.Hour + 1}
	for _, d := range values {
		text, err := Duration(d).MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := back.UnmarshalText(text); err != nil || back.Std() != d {
			t.Errorf("%v -> %q -> %v, %v", d, text, back, err)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Errorf("UnmarshalText accepted garbage")
	}
}

// FuzzDuration checks that whatever ParseDuration accepts, String writes
// back to the same value, and that String's output always parses.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"0", "30d", "1d12h", "1.5d", "200ms", "-3h", "1h0m30s"} {
		f.Add(s, int64(0))
	}
	f.Add("", int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		if v, err := ParseDuration(s); err == nil {
			back, err := ParseDuration(v.String())
			if err != nil || back != v {
				t.Errorf("%q -> %v -> %q -> %v, %v", s, v.Std(), v.String(), back.Std(), err)
			}
		}
		if n == math.MinInt64 {
			return // cannot be negated; the only value that does not round-trip
		}
		d := Duration(n)
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("%d -> %q -> %v, %v", n, d.String(), back.Std(), err)
		}
	})
}
