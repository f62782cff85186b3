package github

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rosterhq/roster/connectors"
	bolt "go.etcd.io/bbolt"
)

// linkState is where a linked person stands in the org, as far as Roster
// knows.
type linkState string

const (
	// stateInvited: an invitation is pending (by login or by e-mail).
	stateInvited linkState = "invited"
	// stateMember: the login is a member.
	stateMember linkState = "member"
	// stateRemoved: Roster removed the person (suspended); reported as a
	// suspended account until DeleteAccount forgets the link.
	stateRemoved linkState = "removed"
	// stateAccepted: an e-mail invitation was accepted, by a login GitHub
	// does not name. The link is completed when an action carries the
	// worker's githubUsername.
	stateAccepted linkState = "accepted"
	// stateExpired: an e-mail invitation expired or failed (GitHub lists
	// it among the failed invitations); the next CreateAccount invites
	// again.
	stateExpired linkState = "expired"
)

// link ties a GitHub login or invitation to a Roster worker: GitHub stores
// no worker id or e-mail on a member, so Roster keeps them.
type link struct {
	Worker connectors.WorkerID `json:"worker,omitempty"`
	Email  string              `json:"email,omitempty"`
	// Login is the GitHub login as GitHub spells it, when known.
	Login string `json:"login,omitempty"`
	// UserID is GitHub's id of the user, which survives a rename of the
	// login; 0 until known.
	UserID int64 `json:"userId,omitempty"`
	// Invitation is the id of the invitation Roster sent last, if any.
	Invitation int64     `json:"invitation,omitempty"`
	State      linkState `json:"state"`
	// Role is the account role Roster knows ("member" or "admin"): the
	// role to restore after a removal.
	Role string `json:"role,omitempty"`
	// Teams are team grants made while the invitation is pending (slug →
	// role). GitHub lists team members only once they joined the org, so
	// the snapshot reports these for a pending account; GitHub turns them
	// into memberships when the invitation is accepted by login. Grants to
	// an e-mail invitation wait here until the login is known.
	Teams   map[string]string `json:"teams,omitempty"`
	Updated time.Time         `json:"updated"`
}

// key is the link's key in the store: the lower-cased login, or
// "invitation:<id>".
func (l *link) key() string {
	if l.Login != "" {
		return strings.ToLower(l.Login)
	}
	return invitationPrefix + strconv.FormatInt(l.Invitation, 10)
}

// accountID is the account id the snapshot reports for the link.
func (l *link) accountID() connectors.AccountID {
	if l.Login != "" {
		return connectors.AccountID(l.Login)
	}
	return invitationAccount(l.Invitation)
}

func (l *link) clone() *link {
	c := *l
	c.Teams = maps.Clone(l.Teams)
	return &c
}

const invitationPrefix = "invitation:"

// invitationAccount is the account id of an invitation whose login is not
// known.
func invitationAccount(id int64) connectors.AccountID {
	return connectors.AccountID(invitationPrefix + strconv.FormatInt(id, 10))
}

// accountKey is the link key of an account id.
func accountKey(id connectors.AccountID) string {
	s := string(id)
	if strings.HasPrefix(s, invitationPrefix) {
		return s
	}
	return strings.ToLower(s)
}

// isInvitationAccount reports whether id names an invitation, not a login.
func isInvitationAccount(id connectors.AccountID) bool {
	return strings.HasPrefix(string(id), invitationPrefix)
}

// linkTx reads and writes links inside one transaction.
type linkTx interface {
	get(key string) (*link, error)
	byWorker(w connectors.WorkerID) (*link, error)
	// put stores l under l.key(), dropping the record at oldKey (when
	// another) and the worker's previous link.
	put(oldKey string, l *link) error
	del(key string) error
	all(fn func(l *link) error) error
}

// linkStore keeps the links: in Roster's bbolt file, or in memory when the
// connector has none (unit tests).
type linkStore interface {
	view(fn func(linkTx) error) error
	update(fn func(linkTx) error) error
}

var (
	bucketConnector = []byte("connector")
	bucketLinks     = []byte("links")
	bucketByWorker  = []byte("links_by_worker")
)

// boltLinks keeps links in bucket connector/<instance>/links, keyed by
// link.key(), JSON values, with the index connector/<instance>/
// links_by_worker (worker id → link key).
type boltLinks struct {
	db   *bolt.DB
	name string
	// commit writes: DB.Update, or the engine's shared group commit.
	commit func(fn func(tx *bolt.Tx) error) error
}

func (s *boltLinks) view(fn func(linkTx) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketConnector)
		if top == nil {
			return fn(boltTx{})
		}
		b := top.Bucket([]byte(s.name))
		if b == nil {
			return fn(boltTx{})
		}
		return fn(boltTx{links: b.Bucket(bucketLinks), idx: b.Bucket(bucketByWorker)})
	})
}

func (s *boltLinks) update(fn func(linkTx) error) error {
	return s.commit(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketConnector)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", bucketConnector, err)
		}
		b, err := top.CreateBucketIfNotExists([]byte(s.name))
		if err != nil {
			return fmt.Errorf("bucket %s/%s: %w", bucketConnector, s.name, err)
		}
		links, err := b.CreateBucketIfNotExists(bucketLinks)
		if err != nil {
			return fmt.Errorf("bucket links: %w", err)
		}
		idx, err := b.CreateBucketIfNotExists(bucketByWorker)
		if err != nil {
			return fmt.Errorf("bucket links_by_worker: %w", err)
		}
		return fn(boltTx{links: links, idx: idx, write: true})
	})
}

// boltTx is a linkTx over the instance's buckets; nil buckets read as
// empty.
type boltTx struct {
	links, idx *bolt.Bucket
	write      bool
}

func (t boltTx) get(key string) (*link, error) {
	if t.links == nil {
		return nil, nil
	}
	v := t.links.Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	var l link
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("link %q: %w", key, err)
	}
	return &l, nil
}

func (t boltTx) byWorker(w connectors.WorkerID) (*link, error) {
	if t.idx == nil || w == "" {
		return nil, nil
	}
	k := t.idx.Get([]byte(w))
	if k == nil {
		return nil, nil
	}
	return t.get(string(k))
}

func (t boltTx) put(oldKey string, l *link) error {
	if !t.write {
		return fmt.Errorf("link store: write in a read transaction")
	}
	key := l.key()
	if oldKey != "" && oldKey != key {
		if err := t.del(oldKey); err != nil {
			return err
		}
	}
	if l.Worker != "" {
		if prev := t.idx.Get([]byte(l.Worker)); prev != nil && string(prev) != key {
			if err := t.links.Delete(prev); err != nil {
				return fmt.Errorf("drop link %q: %w", prev, err)
			}
		}
		if err := t.idx.Put([]byte(l.Worker), []byte(key)); err != nil {
			return fmt.Errorf("index link of %s: %w", l.Worker, err)
		}
	}
	v, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode link %q: %w", key, err)
	}
	if err := t.links.Put([]byte(key), v); err != nil {
		return fmt.Errorf("store link %q: %w", key, err)
	}
	return nil
}

func (t boltTx) del(key string) error {
	if !t.write {
		return fmt.Errorf("link store: write in a read transaction")
	}
	l, err := t.get(key)
	if err != nil || l == nil {
		return err
	}
	if l.Worker != "" && string(t.idx.Get([]byte(l.Worker))) == key {
		if err := t.idx.Delete([]byte(l.Worker)); err != nil {
			return fmt.Errorf("unindex link of %s: %w", l.Worker, err)
		}
	}
	if err := t.links.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete link %q: %w", key, err)
	}
	return nil
}

func (t boltTx) all(fn func(l *link) error) error {
	if t.links == nil {
		return nil
	}
	return t.links.ForEach(func(k, v []byte) error {
		var l link
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("link %q: %w", k, err)
		}
		return fn(&l)
	})
}

// memLinks keeps links in memory, for a connector opened without a data
// file: they are lost when the process ends.
type memLinks struct {
	mu    sync.Mutex
	links map[string]*link
	idx   map[connectors.WorkerID]string
}

func newMemLinks() *memLinks {
	return &memLinks{links: map[string]*link{}, idx: map[connectors.WorkerID]string{}}
}

func (s *memLinks) view(fn func(linkTx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(&memTx{links: s.links, idx: s.idx})
}

// update runs fn on copies and keeps them only if fn succeeds.
func (s *memLinks) update(fn func(linkTx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &memTx{links: maps.Clone(s.links), idx: maps.Clone(s.idx), write: true}
	if err := fn(tx); err != nil {
		return err
	}
	s.links, s.idx = tx.links, tx.idx
	return nil
}

type memTx struct {
	links map[string]*link
	idx   map[connectors.WorkerID]string
	write bool
}

func (t *memTx) get(key string) (*link, error) {
	if l := t.links[key]; l != nil {
		return l.clone(), nil
	}
	return nil, nil
}

func (t *memTx) byWorker(w connectors.WorkerID) (*link, error) {
	k, ok := t.idx[w]
	if !ok {
		return nil, nil
	}
	return t.get(k)
}

func (t *memTx) put(oldKey string, l *link) error {
	if !t.write {
		return fmt.Errorf("link store: write in a read transaction")
	}
	key := l.key()
	if oldKey != "" && oldKey != key {
		_ = t.del(oldKey)
	}
	if l.Worker != "" {
		if prev, ok := t.idx[l.Worker]; ok && prev != key {
			delete(t.links, prev)
		}
		t.idx[l.Worker] = key
	}
	t.links[key] = l.clone()
	return nil
}

func (t *memTx) del(key string) error {
	if !t.write {
		return fmt.Errorf("link store: write in a read transaction")
	}
	if l := t.links[key]; l != nil && l.Worker != "" && t.idx[l.Worker] == key {
		delete(t.idx, l.Worker)
	}
	delete(t.links, key)
	return nil
}

func (t *memTx) all(fn func(l *link) error) error {
	for _, l := range t.links {
		if err := fn(l.clone()); err != nil {
			return err
		}
	}
	return nil
}
