package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestYAMLFeatures(t *testing.T) {
	c, err := Parse("roster.yaml", []byte(src(
		"x-a: &a {type: memory, concurrency: 2}",
		"x-b: &b {type: ldap, concurrency: 3}",
		"version: 1",
		"policies: [p/*.yaml]",
		"connectors:",
		"  first:",
		"    <<: [*a, *b]", // earlier merge wins
		"  tagged:",
		"    type: !!str 5",
		"  over:",
		"    <<: *a",
		"    type: github", // written key beats merged
	)))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"first": "memory/2", "tagged": "5/4", "over": "github/2"} {
		cn := c.Connectors[name]
		if got := fmt.Sprintf("%s/%d", cn.Type, cn.Concurrency); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

func TestYAMLFeatureErrors(t *testing.T) {
	tests := []struct {
		name, src, at, msg string
	}{
		{"integer key", withTail("version: 1", "1: x"), "2:1", `unknown key "1" at the top level`},
		{"complex key", withTail("version: 1", "? [a, b]", ": 1"), "3:1", "invalid YAML: found an invalid key for this map"},
		{"integer overflow", withTail("version: 1", "safety:", "  delete: {max: 18446744073709551615}"), "3:17", "safety.delete.max is out of range"},
		{"merge list of scalars", src("version: 1", "policies: [p/*.yaml]", "connectors:", "  g:", "    <<: [1]", "    type: memory"), "5:10", "merge key (<<) list must hold mappings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("roster.yaml", []byte(tt.src))
			errs, ok := err.(Errors)
			if !ok || len(errs) != 1 {
				t.Fatalf("want exactly one error, got %v", err)
			}
			if got := fmt.Sprintf("%d:%d", errs[0].Line, errs[0].Col); got != tt.at || !strings.Contains(errs[0].Msg, tt.msg) {
				t.Errorf("got %s %q, want %s %q", got, errs[0].Msg, tt.at, tt.msg)
			}
		})
	}
}
