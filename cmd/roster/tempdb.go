package main

import (
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// tempDB is a throw-away data file for commands that must open connectors
// without touching the real one (policy check, config check).
type tempDB struct {
	db  *bolt.DB
	dir string
}

func openTempDB() (*tempDB, error) {
	dir, err := os.MkdirTemp("", "roster-check-")
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "check.db"), 0o600, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &tempDB{db: db, dir: dir}, nil
}

func (t *tempDB) close() {
	t.db.Close()
	os.RemoveAll(t.dir)
}
