package policy

import (
	"fmt"
	"testing"
)

func TestDbgGroups(t *testing.T) {
	s := loadGenerated(t, 200)
	ws := genWorkers(100_000, 1)
	for k := range ws {
		s.Evaluate(&ws[k], benchNow)
	}
	for _, g := range s.groups {
		fmt.Printf("fields=%v keys=%v cacheable=%v roles=%d entries=%d now=%v opaque=%v\n", g.refs.keyFields, g.refs.customKeys, g.cacheable, len(g.roles), len(g.memo.m), g.refs.now, g.refs.opaque)
	}
}
