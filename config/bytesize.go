package config

import (
	"fmt"
	"math"
	"strconv"
)

// ByteSize is a number of bytes written in roster.yaml either as a bare
// integer (bytes) or as an integer with a unit: B, KiB, MiB, GiB (powers
// of 1024) or KB, MB, GB (powers of 1000), e.g. 512KiB, 1MiB, 2MB.
type ByteSize int64

// byteUnits are the units ParseByteSize accepts, largest first so that
// String picks the largest exact binary unit.
var byteUnits = []struct {
	name string
	size int64
}{
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"GB", 1_000_000_000},
	{"MB", 1_000_000},
	{"KB", 1_000},
	{"B", 1},
}

// ParseByteSize parses an unsigned integer with an optional unit suffix
// (B, KB, MB, GB, KiB, MiB, GiB; case as written here). No spaces, signs
// or fractions.
func ParseByteSize(s string) (ByteSize, error) {
	bad := func() (ByteSize, error) {
		return 0, fmt.Errorf("invalid size %q (write e.g. 1048576, 512KiB, 1MiB or 2MB)", s)
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return bad()
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return bad()
	}
	unit := s[i:]
	if unit == "" {
		return ByteSize(n), nil
	}
	for _, u := range byteUnits {
		if u.name == unit {
			if n > math.MaxInt64/u.size {
				return bad()
			}
			return ByteSize(n * u.size), nil
		}
	}
	return bad()
}

// String formats b with the largest binary unit that divides it exactly
// ("1MiB", "512KiB"), or as plain bytes ("1000"). ParseByteSize reads it
// back to the same value.
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range byteUnits[:3] {
			if int64(b)%u.size == 0 {
				return strconv.FormatInt(int64(b)/u.size, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText implements encoding.TextMarshaler with String's format.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
