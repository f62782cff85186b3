package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/connectors"
)

func TestSmoke(t *testing.T) {
	cat := Catalog{
		"google": {{Name: "group", Roles: []string{"MEMBER", "MANAGER", "OWNER"}}},
		"slack":  {{Name: "channel"}, {Name: "usergroup"}},
		"github": {{Name: "account", Roles: []string{"member", "admin"}}, {Name: "team", Roles: []string{"member", "maintainer"}}},
	}
	_ = connectors.Account
	s, err := Load([]string{"testdata/basic/roles.yaml"}, Options{Catalog: cat, DefaultGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{ID: "w1", Email: "Jared@piedpiper.com", WorkerType: "employee", Division: "Engineering", Team: "backend", Title: "Backend Lead"}
	r, err := s.Evaluate(w, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range r.Roles {
		fmt.Printf("%+v\n", m)
	}
	for _, g := range r.Grants {
		fmt.Printf("%s %s %v %+v\n", g.App, g.Entitlement, g.Grace, g.Sources)
	}
	fmt.Println(r.Warnings, r.Expired)
}
