package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// symbol returns the terraform-style symbol of a step and the text that
// follows it.
func describeStep(st lifecycle.Step) (sym, what string) {
	a := st.Action
	switch a.Kind {
	case connectors.CreateAccount:
		return "+", a.Entitlement.String()
	case connectors.Grant:
		if st.From != "" {
			k := a.Entitlement.Key().String()
			return "~", fmt.Sprintf("%s  %s -> %s", k, st.From, orDash(a.Entitlement.Role))
		}
		return "+", a.Entitlement.String()
	case connectors.Revoke:
		return "-", a.Entitlement.String()
	case connectors.SuspendAccount:
		return "~", "account  active -> suspended"
	case connectors.RestoreAccount:
		return "~", "account  suspended -> active"
	case connectors.DeleteAccount:
		return "-", "account (delete)"
	case connectors.TransferData:
		return ">", "transfer data " + a.Detail
	}
	return "?", string(a.Kind)
}

// deferredWhat says what a deferred action will do: "revoke
// team/backend#member", "suspend account" (not "suspend account account").
func deferredWhat(a connectors.Action) string {
	what := strings.ReplaceAll(string(a.Kind), "_", " ")
	if a.Kind == connectors.Grant || a.Kind == connectors.Revoke {
		what += " " + a.Entitlement.String()
	}
	return what
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reasonText(a connectors.Action) string {
	r := strings.ReplaceAll(a.Reason, "_", " ")
	if a.Detail != "" && a.Kind != connectors.TransferData {
		r += " (" + a.Detail + ")"
	}
	return r
}

func personLabel(p connectors.Person) string {
	var b strings.Builder
	b.WriteString(string(p.Worker))
	if p.DisplayName != "" {
		b.WriteString(" " + p.DisplayName)
	}
	if p.Email != "" {
		b.WriteString(" <" + p.Email + ">")
	}
	return b.String()
}

// renderPlan writes a plan the way terraform does: grouped by worker, then
// app, one line per change with its symbol and reason, then a summary.
func renderPlan(w io.Writer, p *lifecycle.Plan) {
	if p.Empty() && len(p.Deferred) == 0 && len(p.Orphans) == 0 && len(p.Unreadable) == 0 {
		fmt.Fprintln(w, "No changes. Every app matches the policy.")
		return
	}
	if !p.Empty() {
		fmt.Fprintln(w, "Roster will perform the following actions:")
		fmt.Fprintln(w)
	}
	// Group preserving plan order (worker, app, phase).
	type group struct {
		person connectors.Person
		apps   []string
		steps  map[string][]lifecycle.Step
	}
	var groups []*group
	byWorker := map[connectors.WorkerID]*group{}
	for _, st := range p.Steps {
		g := byWorker[st.Action.Person.Worker]
		if g == nil {
			g = &group{person: st.Action.Person, steps: map[string][]lifecycle.Step{}}
			byWorker[st.Action.Person.Worker] = g
			groups = append(groups, g)
		}
		if _, ok := g.steps[st.Action.App]; !ok {
			g.apps = append(g.apps, st.Action.App)
		}
		g.steps[st.Action.App] = append(g.steps[st.Action.App], st)
	}
	for _, g := range groups {
		fmt.Fprintf(w, "  # %s\n", personLabel(g.person))
		for _, app := range g.apps {
			fmt.Fprintf(w, "    %s\n", app)
			width := 0
			for _, st := range g.steps[app] {
				_, what := describeStep(st)
				width = max(width, utf8.RuneCountInString(what)) // fmt pads by runes
			}
			for _, st := range g.steps[app] {
				sym, what := describeStep(st)
				fmt.Fprintf(w, "      %s %-*s  %s\n", sym, width, what, reasonText(st.Action))
			}
		}
		fmt.Fprintln(w)
	}
	if len(p.Deferred) > 0 {
		fmt.Fprintln(w, "Waiting for a grace period (not in this plan):")
		for _, d := range p.Deferred {
			fmt.Fprintf(w, "  - %s %s: %s until %s (%s)\n", personLabel(d.Action.Person), d.Action.App,
				deferredWhat(d.Action), d.Until.UTC().Format(time.RFC3339), reasonText(d.Action))
		}
		fmt.Fprintln(w)
	}
	if len(p.Unreadable) > 0 {
		fmt.Fprintln(w, "Apps that could not be read (no changes planned for them):")
		names := make([]string, 0, len(p.Unreadable))
		for app := range p.Unreadable {
			names = append(names, app)
		}
		sort.Strings(names)
		for _, app := range names {
			fmt.Fprintf(w, "  ! %s: %s\n", app, p.Unreadable[app])
		}
		fmt.Fprintln(w)
	}
	if len(p.Orphans) > 0 {
		fmt.Fprintln(w, "Accounts that match no worker (reported, not changed):")
		orphans := append([]lifecycle.Orphan(nil), p.Orphans...)
		sort.SliceStable(orphans, func(i, j int) bool { return orphans[i].App < orphans[j].App })
		for _, o := range orphans {
			if o.Account.Email != "" {
				fmt.Fprintf(w, "  ? %s: %s %s\n", o.App, o.Account.ID, o.Account.Email)
			} else {
				fmt.Fprintf(w, "  ? %s: %s\n", o.App, o.Account.ID)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, summaryLine(p))
}

func summaryLine(p *lifecycle.Plan) string {
	s := p.Summary()
	line := fmt.Sprintf("Plan: %d to create, %d to grant, %d to change, %d to revoke, %d to suspend, %d to restore, %d to delete",
		s.Create, s.Grant, s.Change, s.Revoke, s.Suspend, s.Restore, s.Delete)
	if s.Transfer > 0 {
		line += fmt.Sprintf(", %d %s", s.Transfer, plural("data transfer", s.Transfer))
	}
	return line + "."
}
