package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestYAMLDocumentsAnchorsAndAliases(t *testing.T) {
	_, err := LoadBytes("multi.yaml", []byte("version: 1\n---\nversion: 1\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "multi.yaml:3:1: only one YAML document per file") {
		t.Errorf("two documents: %v", err)
	}
	policy := `version: 1
roles:
  - name: a
    birthright: true
    grants: &common
      slack: [channel/general]
  - name: b
    when: worker.team == "x"
    grants: *common
`
	s, err := LoadBytes("anchors.yaml", []byte(policy), Options{Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	res := evaluate(t, s, Worker{ID: "w", Team: "x"}, june)
	g := findGrant_(t, res.Grants, "slack:channel/general")
	if got := sourceRoles(g); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("sources = %v", got)
	}
	_, err = LoadBytes("alias.yaml", []byte("version: 1\nroles: *nothing\n"), Options{})
	if err == nil {
		t.Error("alias to an unknown anchor accepted")
	}
}
