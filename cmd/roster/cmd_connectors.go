package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rosterhq/roster/config"
	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

func newConnectorsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "connectors", Short: "Inspect the configured apps"}
	var timeout time.Duration
	check := &cobra.Command{
		Use:   "check [NAME...]",
		Short: "Prove each connector's credentials work and list missing permissions (read-only)",
		Long: `Check makes read-only calls to each configured app (or only the ones named)
and reports whether its credentials work and which permissions or scopes
are missing. Nothing is changed in any app. (Through a running server the
call itself is audited, as every admin API call is.)

A connector that has no dedicated check is checked by reading its state
(the same read a plan makes). When the policy loads, every resource it grants
to some worker (teams, channels…) is also looked up in the apps that can
tell, so a misspelt or deleted team is found before an apply fails on it.

Exit status: 0 when every checked connector is ready, 1 otherwise.`,
		Example: `  roster connectors check
  roster connectors check github slack`,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			res, err := b.CheckConnectors(cmd.Context(), args, timeout)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONNECTOR\tTYPE\tSTATUS\tDETAIL")
			failed := 0
			for _, c := range res {
				if c.Status != "ok" {
					failed++
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Type, c.Status, c.Detail)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d connector(s) not ready", failed)}
			}
			return nil
		},
	}
	check.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up on one connector after this long")
	cmd.AddCommand(check)
	return cmd
}

// connectorCheck is one line of `connectors check`.
type connectorCheck struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Status is "ok", "missing permissions", "unknown resources" or
	// "error".
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// checkConnectors checks the named instances of apps (all when names is
// empty), in the configured order; a name that is not configured is an
// error.
//
// granted, when not nil, lists per app every resource the policy grants
// to some worker; apps that can (connectors.ResourceChecker) report those
// that do not exist.
func checkConnectors(ctx context.Context, cfg *config.Config, apps []connectors.Connector, granted map[string][]connectors.EntitlementKey, names []string, timeout time.Duration) ([]connectorCheck, error) {
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := cfg.Connectors[n]; !ok {
			return nil, fmt.Errorf("no connector named %q in %s (configured: %s)", n, relPath(cfg.Path), strings.Join(cfg.ConnectorNames, ", "))
		}
		want[n] = true
	}
	var out []connectorCheck
	for _, c := range apps {
		if len(want) > 0 && !want[c.Name()] {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		status, detail := checkConnector(cctx, c)
		if status == "ok" {
			status, detail = checkResources(cctx, c, granted[c.Name()], status, detail)
		}
		cancel()
		out = append(out, connectorCheck{Name: c.Name(), Type: cfg.Connectors[c.Name()].Type, Status: status, Detail: detail})
	}
	return out, nil
}

// checkConnector runs c's own check, or reads its state when it has none.
// The status is "ok", "missing permissions" or "error"
// (checkResources adds "unknown resources").
func checkConnector(ctx context.Context, c connectors.Connector) (status, detail string) {
	if ch, ok := c.(connectors.Checker); ok {
		missing, err := ch.Check(ctx)
		switch {
		case err != nil:
			return "error", errorDetail(err)
		case len(missing) > 0:
			return "missing permissions", strings.Join(missing, "; ")
		}
		return "ok", "credentials work; no permission missing"
	}
	st, err := c.Snapshot(ctx)
	if err != nil {
		return "error", errorDetail(err)
	}
	return "ok", fmt.Sprintf("state read: %d accounts", len(st.Accounts))
}

// checkResources asks c, if it can tell, which granted resources do not
// exist; it keeps status and detail when all do.
func checkResources(ctx context.Context, c connectors.Connector, keys []connectors.EntitlementKey, status, detail string) (string, string) {
	rc, ok := c.(connectors.ResourceChecker)
	if !ok || len(keys) == 0 {
		return status, detail
	}
	unknown, err := rc.UnknownResources(ctx, keys)
	if err != nil {
		return "error", "checking the resources the policy grants: " + errorDetail(err)
	}
	if len(unknown) == 0 {
		return status, fmt.Sprintf("%s; all %d resources the policy grants exist", detail, len(keys))
	}
	names := make([]string, len(unknown))
	for i, k := range unknown {
		names[i] = k.String()
	}
	return "unknown resources", "the policy grants what does not exist: " + strings.Join(names, ", ")
}

// grantedResources evaluates the policy for every worker of s and returns,
// per app, the distinct resources granted (accounts left out), sorted.
func grantedResources(ctx context.Context, s *session, now time.Time) (map[string][]connectors.EntitlementKey, error) {
	ws, err := s.engine.Workers(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[connectors.WorkerID]*lifecycle.Worker, len(ws))
	for _, w := range ws {
		byID[w.ID] = w
	}
	pol := s.engine.Policy()
	seen := map[string]map[connectors.EntitlementKey]bool{}
	for _, w := range ws {
		res, err := pol.Evaluate(lifecycle.PolicyWorker(w, byID, s.cfg.Location), now)
		if err != nil {
			return nil, err
		}
		for _, g := range res.Grants {
			if g.Entitlement.IsAccount() {
				continue
			}
			if seen[g.App] == nil {
				seen[g.App] = map[connectors.EntitlementKey]bool{}
			}
			seen[g.App][g.Entitlement.Key()] = true
		}
	}
	out := map[string][]connectors.EntitlementKey{}
	for app, keys := range seen {
		for k := range keys {
			out[app] = append(out[app], k)
		}
		slices.SortFunc(out[app], func(a, b connectors.EntitlementKey) int { return strings.Compare(a.String(), b.String()) })
	}
	return out, nil
}

func errorDetail(err error) string {
	if k := connectors.KindOf(err); k != connectors.Unknown {
		return fmt.Sprintf("%s: %v", k, err)
	}
	return err.Error()
}
