package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rosterhq/roster/audit"
	"github.com/rosterhq/roster/connectors"
)

// Index buckets: lower-cased userName -> worker id, externalId -> worker
// id, for live (not deleted) workers. Kept in the transaction that writes
// the worker.
var (
	bucketByUserName   = []byte("idx_username")
	bucketByExternalID = []byte("idx_externalid")
	bucketGroups       = []byte("groups")
)

// initIndexes creates the index buckets, filling them from the stored
// workers when they are new (a data file from before they existed).
func initIndexes(tx *bolt.Tx) error {
	fresh := tx.Bucket(bucketByUserName) == nil || tx.Bucket(bucketByExternalID) == nil
	for _, b := range [][]byte{bucketByUserName, bucketByExternalID, bucketGroups} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	if !fresh {
		return nil
	}
	ws, err := allWorkers(tx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if err := updateIndexes(tx, nil, w); err != nil {
			return err
		}
	}
	return nil
}

func userNameKey(s string) []byte { return []byte(strings.ToLower(strings.TrimSpace(s))) }

// checkUnique refuses rec for worker id when another live worker holds its
// userName or externalId.
func checkUnique(tx *bolt.Tx, id connectors.WorkerID, rec *HRRecord) error {
	for _, ix := range []struct {
		bucket []byte
		key    []byte
		what   string
	}{
		{bucketByUserName, userNameKey(rec.UserName), "userName " + rec.UserName},
		{bucketByExternalID, []byte(rec.ExternalID), "externalId " + rec.ExternalID},
	} {
		if len(ix.key) == 0 {
			continue
		}
		if other := tx.Bucket(ix.bucket).Get(ix.key); other != nil && string(other) != string(id) {
			return fmt.Errorf("%w: %s already belongs to worker %s", ErrConflict, ix.what, other)
		}
	}
	return nil
}

// updateIndexes moves w's index entries from what old had to what w has
// (none for a deleted worker).
func updateIndexes(tx *bolt.Tx, old, w *Worker) error {
	set := func(bucket []byte, oldKey, newKey []byte) error {
		b := tx.Bucket(bucket)
		if len(oldKey) > 0 && string(oldKey) != string(newKey) && string(b.Get(oldKey)) == string(w.ID) {
			if err := b.Delete(oldKey); err != nil {
				return err
			}
		}
		if len(newKey) > 0 {
			return b.Put(newKey, []byte(w.ID))
		}
		return nil
	}
	var oldUser, oldExt []byte
	if old != nil && !old.Deleted {
		oldUser, oldExt = userNameKey(old.HR.UserName), []byte(old.HR.ExternalID)
	}
	newUser, newExt := userNameKey(w.HR.UserName), []byte(w.HR.ExternalID)
	if w.Deleted {
		newUser, newExt = nil, nil
		if old != nil {
			oldUser, oldExt = userNameKey(old.HR.UserName), []byte(old.HR.ExternalID)
		}
	}
	if err := set(bucketByUserName, oldUser, newUser); err != nil {
		return err
	}
	return set(bucketByExternalID, oldExt, newExt)
}

func (e *Engine) workerByIndex(bucket, key []byte, what string) (*Worker, error) {
	var w *Worker
	err := e.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucket).Get(key)
		if id == nil {
			return nil
		}
		var err error
		w, err = getWorker(tx, connectors.WorkerID(id))
		return err
	})
	if err != nil {
		return nil, err
	}
	if w == nil || w.Deleted {
		return nil, fmt.Errorf("worker with %s: %w", what, ErrNotFound)
	}
	return w, nil
}

// WorkerByUserName finds the live worker with this userName, compared
// case-insensitively. ErrNotFound if none.
func (e *Engine) WorkerByUserName(ctx context.Context, userName string) (*Worker, error) {
	return e.workerByIndex(bucketByUserName, userNameKey(userName), "userName "+userName)
}

// WorkerByExternalID finds the live worker with this externalId.
// ErrNotFound if none.
func (e *Engine) WorkerByExternalID(ctx context.Context, externalID string) (*Worker, error) {
	if externalID == "" {
		return nil, fmt.Errorf("empty externalId: %w", ErrNotFound)
	}
	return e.workerByIndex(bucketByExternalID, []byte(externalID), "externalId "+externalID)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewWorkerID returns a fresh worker id for a worker created through an
// API (SCIM POST): "w-" and 16 random hex digits.
func (e *Engine) NewWorkerID() connectors.WorkerID { return connectors.WorkerID("w-" + randomHex(8)) }

// NewGroupID returns a fresh HR group id.
func (e *Engine) NewGroupID() string { return "g-" + randomHex(8) }

// HRGroup is a group HR keeps (a team, a cost centre): its members get its
// display name in HRRecord.Groups, which policies read as worker.groups.
type HRGroup struct {
	ID          string                `json:"id"`
	DisplayName string                `json:"displayName"`
	ExternalID  string                `json:"externalId,omitempty"`
	Members     []connectors.WorkerID `json:"members,omitempty"`
	Version     uint64                `json:"version"`
	CreatedAt   time.Time             `json:"createdAt"`
	UpdatedAt   time.Time             `json:"updatedAt"`
}

func getGroup(tx *bolt.Tx, id string) (*HRGroup, error) {
	var g HRGroup
	ok, err := getJSON(tx, bucketGroups, []byte(id), &g)
	if err != nil || !ok {
		return nil, err
	}
	return &g, nil
}

// Group returns one HR group. ErrNotFound if none.
func (e *Engine) Group(ctx context.Context, id string) (*HRGroup, error) {
	var g *HRGroup
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		g, err = getGroup(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("group %s: %w", id, ErrNotFound)
	}
	return g, nil
}

// Groups returns every HR group, sorted by id.
func (e *Engine) Groups(ctx context.Context) ([]*HRGroup, error) {
	var out []*HRGroup
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = decodeAll[HRGroup](tx, bucketGroups)
		return err
	})
	return out, err
}

// UpsertGroup creates or replaces an HR group (display name, externalId
// and the whole member list). Every worker who joins or leaves it, or
// whose group is renamed, gets an updated HRRecord.Groups: a new version,
// an audit record and, as for any change of organisational attributes, a
// mover transition. Unknown members are an ErrInvalidRecord error;
// nothing is written then.
func (e *Engine) UpsertGroup(ctx context.Context, actor string, g HRGroup) (*HRGroup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g.ID == "" || strings.TrimSpace(g.DisplayName) == "" {
		return nil, fmt.Errorf("%w: a group needs an id and a displayName", ErrInvalidRecord)
	}
	if len(g.ID) > MaxKeyLength || len(g.DisplayName) > MaxKeyLength || len(g.ExternalID) > MaxKeyLength {
		return nil, fmt.Errorf("%w: group id, displayName and externalId are at most %d bytes", ErrInvalidRecord, MaxKeyLength)
	}
	return e.writeGroup(actor, g.ID, &g)
}

// DeleteGroup removes an HR group; its members lose it from their Groups.
func (e *Engine) DeleteGroup(ctx context.Context, actor string, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := e.writeGroup(actor, id, nil)
	return err
}

func (e *Engine) writeGroup(actor, id string, g *HRGroup) (*HRGroup, error) {
	now := e.now().UTC()
	var out *HRGroup
	err := e.commits.Update(func(tx *bolt.Tx) error {
		old, err := getGroup(tx, id)
		if err != nil {
			return fatal(err)
		}
		if g == nil && old == nil {
			return fmt.Errorf("group %s: %w", id, ErrNotFound)
		}
		affected := map[connectors.WorkerID]bool{}
		if old != nil {
			for _, m := range old.Members {
				affected[m] = true
			}
		}
		if g != nil {
			ng := *g
			ng.Members = slices.Clone(g.Members)
			slices.Sort(ng.Members)
			ng.Members = slices.Compact(ng.Members)
			for _, m := range ng.Members {
				w, err := getWorker(tx, m)
				if err != nil {
					return fatal(err)
				}
				if w == nil || w.Deleted {
					return fmt.Errorf("%w: group %s: member %s is not a known worker", ErrInvalidRecord, id, m)
				}
				affected[m] = true
			}
			ng.CreatedAt, ng.Version = now, 1
			if old != nil {
				ng.CreatedAt, ng.Version = old.CreatedAt, old.Version+1
			}
			ng.UpdatedAt = now
			out = &ng
			if err := putJSON(tx, bucketGroups, []byte(id), out); err != nil {
				return fatal(err)
			}
		} else if err := tx.Bucket(bucketGroups).Delete([]byte(id)); err != nil {
			return fatal(err)
		}
		typ := "hr.group"
		if g == nil {
			typ = "hr.group.delete"
		}
		d := map[string]string{}
		if out != nil {
			d["displayName"] = out.DisplayName
			d["members"] = fmt.Sprint(len(out.Members))
			d["version"] = fmt.Sprint(out.Version)
		}
		if _, err := audit.Append(tx, &audit.Record{Type: typ, Actor: actor, Message: "HR group " + id, Details: d}, e.now); err != nil {
			return fatal(err)
		}
		return fatal(e.refreshGroups(tx, actor, affected, now))
	})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: store group %s: %w", id, err)
	}
	return out, nil
}

// refreshGroups recomputes HRRecord.Groups for the given workers from the
// stored groups and writes those that changed.
func (e *Engine) refreshGroups(tx *bolt.Tx, actor string, ids map[connectors.WorkerID]bool, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	groups, err := decodeAll[HRGroup](tx, bucketGroups)
	if err != nil {
		return err
	}
	names := map[connectors.WorkerID][]string{}
	for _, g := range groups {
		for _, m := range g.Members {
			if ids[m] {
				names[m] = append(names[m], g.DisplayName)
			}
		}
	}
	sorted := make([]connectors.WorkerID, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, id := range sorted {
		old, err := getWorker(tx, id)
		if err != nil {
			return err
		}
		if old == nil {
			continue // not a stored worker: nothing to refresh
		}
		gs := names[id]
		slices.Sort(gs)
		gs = slices.Compact(gs)
		if slices.Equal(gs, old.HR.Groups) {
			continue
		}
		rec := old.HR
		rec.Groups = gs
		changed := ChangedFields(&old.HR, &rec)
		w, tr := transition(old, &rec, old.Deleted, now, e.loc)
		if err := e.storeWorker(tx, actor, old, w, tr, changed); err != nil {
			return err
		}
	}
	return nil
}

// leaveGroups takes a worker deleted in HR out of every HR group, each
// change audited, so no group lists someone who no longer exists.
func (e *Engine) leaveGroups(tx *bolt.Tx, actor string, id connectors.WorkerID, now time.Time) error {
	groups, err := decodeAll[HRGroup](tx, bucketGroups)
	if err != nil {
		return err
	}
	for _, g := range groups {
		i := slices.Index(g.Members, id)
		if i < 0 {
			continue
		}
		g.Members = slices.Delete(g.Members, i, i+1)
		g.Version++
		g.UpdatedAt = now
		if err := putJSON(tx, bucketGroups, []byte(g.ID), g); err != nil {
			return err
		}
		if _, err := audit.Append(tx, &audit.Record{Type: "hr.group", Actor: actor, Worker: string(id),
			Message: "HR group " + g.ID + ": member deleted in HR removed",
			Details: map[string]string{"displayName": g.DisplayName, "members": fmt.Sprint(len(g.Members)), "version": fmt.Sprint(g.Version)}}, e.now); err != nil {
			return err
		}
	}
	return nil
}
