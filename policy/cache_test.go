package policy

import (
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
)

// randomizeWorkers perturbs generated workers so that edge cases are
// common: empty fields, missing custom attributes, odd titles, no manager.
func randomizeWorkers(ws []Worker, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	for i := range ws {
		w := &ws[i]
		switch rng.Intn(8) {
		case 0:
			w.Team = ""
		case 1:
			delete(w.Custom, "level")
		case 2:
			w.Custom = nil
		case 3:
			w.ManagerChain = nil
		case 4:
			w.Title = "Staff Lead"
		case 5:
			w.StartDate = time.Time{}
		case 6:
			w.Location = ""
		}
	}
}

// TestMemoAgreesWithDirectEvaluation checks that the memo and the direct
// template paths never change a result: the same workers evaluated with
// memoization (twice: cold and warm) and with plain CEL for everything
// give identical results.
func TestMemoAgreesWithDirectEvaluation(t *testing.T) {
	memoized := loadGenerated(t, 200)
	direct := loadGenerated(t, 200)
	direct.noCache = true
	ws := genWorkers(1200, 7)
	randomizeWorkers(ws, 8)
	now := benchNow
	for pass := 0; pass < 2; pass++ {
		for i := range ws {
			a, err := memoized.Evaluate(&ws[i], now)
			if err != nil {
				t.Fatal(err)
			}
			b, err := direct.Evaluate(&ws[i], now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("pass %d, worker %s: memoized and direct results differ:\nmemo:   %+v\ndirect: %+v", pass, ws[i].ID, a, b)
			}
		}
	}
	// The memo was used.
	entries := 0
	for _, g := range memoized.groups {
		entries += len(g.memo.m)
	}
	if entries == 0 {
		t.Error("no memo entries after evaluating the workers")
	}
}

// TestMemoLimit checks that a full memo still gives right answers.
func TestMemoLimit(t *testing.T) {
	limited := loadGenerated(t, 200)
	limited.memoLimit = 3
	direct := loadGenerated(t, 200)
	direct.noCache = true
	ws := genWorkers(200, 3)
	for i := range ws {
		a, _ := limited.Evaluate(&ws[i], benchNow)
		b, _ := direct.Evaluate(&ws[i], benchNow)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("worker %s: results differ with a full memo", ws[i].ID)
		}
	}
	for _, g := range limited.groups {
		if len(g.memo.m) > 3 {
			t.Errorf("memo grew to %d entries past its limit", len(g.memo.m))
		}
	}
}

func TestRefAnalysis(t *testing.T) {
	env, err := newCELEnv()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr      string
		fields    []string
		custom    []string
		cacheable bool
	}{
		{`worker.department == "x"`, []string{"department"}, nil, true},
		{`worker.team in ["a"] && worker.title.endsWith("Lead")`, []string{"title", "team"}, nil, true},
		{`"m" in worker.managerChain`, []string{"managerChain"}, nil, true},
		{`has(worker.custom.level) && worker.custom["level"] == "L5" && "x" in worker.custom`, nil, []string{"level", "x"}, true},
		{`worker.custom.?level.orValue("") == "L5"`, nil, []string{"level"}, true},
		{`size(worker.custom) > 2`, []string{"custom"}, nil, false},
		{`worker.email.endsWith("@piedpiper.com")`, []string{"email"}, nil, false},
		{`worker.startDate < now`, []string{"startDate"}, nil, false},
		{`[worker].exists(w, w.team == "x")`, nil, nil, false},
		{`[1].exists(worker, worker == 1)`, nil, nil, false},
		{`worker.hasEndDate`, []string{"hasEndDate"}, nil, true},
	}
	for _, tt := range tests {
		x, issues := compileExpr(env, tt.expr, types.BoolType, "a when condition")
		if len(issues) > 0 {
			t.Fatalf("%s: %v", tt.expr, issues)
		}
		var names []string
		for _, f := range x.refs.keyFields {
			names = append(names, fieldNames[f])
		}
		if fmt.Sprint(names) != fmt.Sprint(sortedLike(tt.fields, names)) || fmt.Sprint(x.refs.customKeys) != fmt.Sprint(nilIfEmpty(tt.custom)) ||
			x.refs.cacheable() != tt.cacheable || len(names) != len(tt.fields) {
			t.Errorf("%s: fields %v custom %v cacheable %v; want %v %v %v", tt.expr, names, x.refs.customKeys, x.refs.cacheable(), tt.fields, tt.custom, tt.cacheable)
		}
	}
}

// sortedLike returns want in the order of got when they hold the same
// names (keyFields are in field order, not in the order written).
func sortedLike(want, got []string) []string {
	if len(want) != len(got) {
		return want
	}
	seen := map[string]bool{}
	for _, w := range want {
		seen[w] = true
	}
	for _, g := range got {
		if !seen[g] {
			return want
		}
	}
	return got
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestConcurrentEvaluate shares one Set between goroutines (run with
// -race): results equal the sequential ones.
func TestConcurrentEvaluate(t *testing.T) {
	s := loadGenerated(t, 200)
	ws := genWorkers(200, 11)
	randomizeWorkers(ws, 12)
	want := make([]*Result, len(ws))
	ref := loadGenerated(t, 200)
	for i := range ws {
		want[i], _ = ref.Evaluate(&ws[i], benchNow)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := range ws {
				i := (k + g*97) % len(ws)
				got, err := s.Evaluate(&ws[i], benchNow)
				if err != nil || !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Sprintf("goroutine %d, worker %s: result differs", g, ws[i].ID)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
