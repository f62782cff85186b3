package policy

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestSmokeErrors(t *testing.T) {
	cat := Catalog{
		"slack":  {{Name: "channel"}, {Name: "usergroup"}},
		"github": {{Name: "account", Roles: []string{"member", "admin"}}, {Name: "team", Roles: []string{"member", "maintainer"}}},
	}
	files, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, f := range files {
		_, err := Load([]string{f}, Options{Catalog: cat})
		fmt.Printf("== %s\n%v\n", f, err)
	}
	_, err := Load([]string{"testdata/errors/dup_a.yaml", "testdata/errors/dup_b.yaml"}, Options{Catalog: cat})
	fmt.Printf("== dup\n%v\n", err)
}
