package lifecycle

import (
	"fmt"

	"github.com/rosterhq/roster/connectors"
)

// CheckSafety compares a plan with the thresholds and returns one sentence
// per limit it exceeds (none: the plan may run without approval). Only
// destructive kinds are limited: suspensions, revocations and deletions,
// each counted as distinct workers affected.
func CheckSafety(p *Plan, s Safety) []string {
	workers := map[connectors.ActionKind]map[connectors.WorkerID]bool{}
	for _, st := range p.Steps {
		k := st.Action.Kind
		if k != connectors.SuspendAccount && k != connectors.Revoke && k != connectors.DeleteAccount {
			continue
		}
		if workers[k] == nil {
			workers[k] = map[connectors.WorkerID]bool{}
		}
		workers[k][st.Action.Person.Worker] = true
	}
	var out []string
	check := func(name string, k connectors.ActionKind, t Threshold) {
		n := len(workers[k])
		if n == 0 {
			return
		}
		if t.Max >= 0 && n > t.Max {
			out = append(out, fmt.Sprintf("%s: %d workers > max %d", name, n, t.Max))
		}
		if t.MaxPercent >= 0 && p.Managed > 0 {
			pct := 100 * float64(n) / float64(p.Managed)
			if pct > t.MaxPercent {
				out = append(out, fmt.Sprintf("%s: %d of %d managed workers (%.1f%%) > max %.4g%%", name, n, p.Managed, pct, t.MaxPercent))
			}
		}
	}
	check("suspend", connectors.SuspendAccount, s.Suspend)
	check("revoke", connectors.Revoke, s.Revoke)
	check("delete", connectors.DeleteAccount, s.Delete)
	return out
}
