package hr

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// fakeStore is an in-memory Store that keeps the engine's rules: unique
// userName (any case) and externalId among live workers, Groups kept on
// HR writes and set from group membership, deleted workers kept.
type fakeStore struct {
	mu      sync.Mutex
	workers map[connectors.WorkerID]*lifecycle.Worker
	groups  map[string]*lifecycle.HRGroup
	seq     int
	writes  int           // successful writes that changed something
	actors  []string      // actor of every write
	fail    error         // returned by every write when set
	delay   time.Duration // Worker sleeps this long (widens race windows)
	now     time.Time
}

func newFakeStore() *fakeStore {
	return &fakeStore{workers: map[connectors.WorkerID]*lifecycle.Worker{}, groups: map[string]*lifecycle.HRGroup{},
		now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

// reset empties the store.
func (f *fakeStore) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.workers, f.groups = map[connectors.WorkerID]*lifecycle.Worker{}, map[string]*lifecycle.HRGroup{}
	f.seq, f.writes, f.actors = 0, 0, nil
}

func clone(w *lifecycle.Worker) *lifecycle.Worker {
	c := *w
	c.HR.Custom = maps2(w.HR.Custom)
	c.HR.Groups = slices.Clone(w.HR.Groups)
	return &c
}

func maps2(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (f *fakeStore) tick() time.Time {
	f.now = f.now.Add(time.Second)
	return f.now
}

func (f *fakeStore) UpsertHR(ctx context.Context, actor string, rec lifecycle.HRRecord) (*lifecycle.Worker, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, "", f.fail
	}
	if err := rec.Validate(); err != nil {
		return nil, "", err
	}
	for _, w := range f.workers {
		if w.ID == rec.ID || w.Deleted {
			continue
		}
		if rec.UserName != "" && strings.EqualFold(w.HR.UserName, rec.UserName) {
			return nil, "", fmt.Errorf("lifecycle: store worker %s: %w: userName %s already belongs to worker %s", rec.ID, lifecycle.ErrConflict, rec.UserName, w.ID)
		}
		if rec.ExternalID != "" && w.HR.ExternalID == rec.ExternalID {
			return nil, "", fmt.Errorf("lifecycle: store worker %s: %w: externalId %s already belongs to worker %s", rec.ID, lifecycle.ErrConflict, rec.ExternalID, w.ID)
		}
	}
	old := f.workers[rec.ID]
	rec.Groups = nil
	if old != nil {
		rec.Groups = slices.Clone(old.HR.Groups)
		if reflect.DeepEqual(old.HR, rec) && !old.Deleted {
			return clone(old), "", nil
		}
	}
	now := f.tick()
	w := &lifecycle.Worker{ID: rec.ID, HR: rec, CreatedAt: now}
	tr := ""
	switch {
	case old == nil:
		if rec.Active {
			tr = lifecycle.Joiner
		}
	default:
		w.CreatedAt, w.Version = old.CreatedAt, old.Version
		wasActive := old.HR.Active && !old.Deleted
		switch {
		case wasActive && !rec.Active:
			tr = lifecycle.Leaver
		case !wasActive && rec.Active:
			tr = lifecycle.Rehire
		case rec.Active && len(lifecycle.ChangedFields(&old.HR, &rec)) > 0:
			tr = lifecycle.Mover
		}
	}
	w.Version++
	w.UpdatedAt = now
	w.Status = lifecycle.Active
	if !rec.Active {
		w.Status = lifecycle.Terminated
	}
	f.workers[rec.ID] = w
	f.writes++
	f.actors = append(f.actors, actor)
	return clone(w), tr, nil
}

func (f *fakeStore) DeleteHR(ctx context.Context, actor string, id connectors.WorkerID) (*lifecycle.Worker, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, "", f.fail
	}
	w := f.workers[id]
	if w == nil {
		return nil, "", fmt.Errorf("worker %s: %w", id, lifecycle.ErrNotFound)
	}
	w.Deleted, w.Status = true, lifecycle.Terminated
	w.Version++
	w.UpdatedAt = f.tick()
	f.writes++
	f.actors = append(f.actors, actor)
	return clone(w), lifecycle.Leaver, nil
}

func (f *fakeStore) Worker(ctx context.Context, id connectors.WorkerID) (*lifecycle.Worker, error) {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.workers[id]
	if w == nil {
		return nil, fmt.Errorf("worker %s: %w", id, lifecycle.ErrNotFound)
	}
	return clone(w), nil
}

func (f *fakeStore) Workers(ctx context.Context) ([]*lifecycle.Worker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*lifecycle.Worker, 0, len(f.workers))
	for _, w := range f.workers {
		out = append(out, clone(w))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeStore) find(match func(*lifecycle.Worker) bool, what string) (*lifecycle.Worker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.workers {
		if !w.Deleted && match(w) {
			return clone(w), nil
		}
	}
	return nil, fmt.Errorf("worker with %s: %w", what, lifecycle.ErrNotFound)
}

func (f *fakeStore) WorkerByUserName(ctx context.Context, userName string) (*lifecycle.Worker, error) {
	return f.find(func(w *lifecycle.Worker) bool { return strings.EqualFold(w.HR.UserName, userName) }, "userName "+userName)
}

func (f *fakeStore) WorkerByExternalID(ctx context.Context, externalID string) (*lifecycle.Worker, error) {
	return f.find(func(w *lifecycle.Worker) bool { return externalID != "" && w.HR.ExternalID == externalID }, "externalId "+externalID)
}

func (f *fakeStore) NewWorkerID() connectors.WorkerID {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return connectors.WorkerID(fmt.Sprintf("w-%04d", f.seq))
}

func (f *fakeStore) NewGroupID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return fmt.Sprintf("g-%04d", f.seq)
}

func (f *fakeStore) UpsertGroup(ctx context.Context, actor string, g lifecycle.HRGroup) (*lifecycle.HRGroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	if g.ID == "" || g.DisplayName == "" {
		return nil, fmt.Errorf("%w: a group needs an id and a displayName", lifecycle.ErrInvalidRecord)
	}
	for _, m := range g.Members {
		if f.workers[m] == nil {
			return nil, fmt.Errorf("lifecycle: store group %s: %w: member %s is not a known worker", g.ID, lifecycle.ErrInvalidRecord, m)
		}
	}
	now := f.tick()
	ng := g
	ng.Members = slices.Clone(g.Members)
	slices.Sort(ng.Members)
	ng.Members = slices.Compact(ng.Members)
	ng.CreatedAt, ng.Version, ng.UpdatedAt = now, 1, now
	if old := f.groups[g.ID]; old != nil {
		ng.CreatedAt, ng.Version = old.CreatedAt, old.Version+1
	}
	f.groups[g.ID] = &ng
	f.refreshGroups()
	f.writes++
	f.actors = append(f.actors, actor)
	c := ng
	return &c, nil
}

func (f *fakeStore) refreshGroups() {
	names := map[connectors.WorkerID][]string{}
	for _, g := range f.groups {
		for _, m := range g.Members {
			names[m] = append(names[m], g.DisplayName)
		}
	}
	for id, w := range f.workers {
		gs := names[id]
		slices.Sort(gs)
		if !slices.Equal(gs, w.HR.Groups) {
			w.HR.Groups = gs
			w.Version++
		}
	}
}

func (f *fakeStore) DeleteGroup(ctx context.Context, actor string, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if f.groups[id] == nil {
		return fmt.Errorf("group %s: %w", id, lifecycle.ErrNotFound)
	}
	delete(f.groups, id)
	f.refreshGroups()
	f.writes++
	f.actors = append(f.actors, actor)
	return nil
}

func (f *fakeStore) Group(ctx context.Context, id string) (*lifecycle.HRGroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[id]
	if g == nil {
		return nil, fmt.Errorf("group %s: %w", id, lifecycle.ErrNotFound)
	}
	c := *g
	c.Members = slices.Clone(g.Members)
	return &c, nil
}

func (f *fakeStore) Groups(ctx context.Context) ([]*lifecycle.HRGroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*lifecycle.HRGroup, 0, len(f.groups))
	for _, g := range f.groups {
		c := *g
		c.Members = slices.Clone(g.Members)
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// snapshot is the fake's whole state, to check that a failed request
// stored nothing.
func (f *fakeStore) snapshot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(struct {
		W map[connectors.WorkerID]*lifecycle.Worker
		G map[string]*lifecycle.HRGroup
	}{f.workers, f.groups})
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", f.writes, b)
}
