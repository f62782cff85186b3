// Package audit is Roster's append-only, hash-chained, tamper-evident audit
// log. It lives in its own bucket (Bucket) of Roster's bbolt file and is
// written only by this package, only by appending.
//
// # Writing
//
// Other packages record events inside their own bbolt write transactions
// with Append, so that a change and its audit record commit atomically
// ("remove the action from the outbox" and "audit its outcome" either both
// happen or neither does). Log.Append is the convenience form that runs its
// own transaction. Call Init once when the database is opened
// (db.Update(audit.Init)); every other function returns ErrNoBucket until it
// has run.
//
// No function in this package updates or deletes a record, and none ever
// will: correcting a mistake means appending a new record that says so.
//
// Records must never contain secrets (tokens, passwords, API keys, session
// cookies). This package cannot tell a secret from any other string; keeping
// them out is the caller's job. Put identifiers and outcomes in records, not
// credentials or raw request bodies.
//
// # Storage format
//
// Each record is one key/value pair in the bucket:
//
//	key   = seq as 8 bytes big-endian (1, 2, 3, … from Bucket.NextSequence)
//	value = prevHash (32 bytes) || hash (32 bytes) || body
//	body  = canonical JSON of the Record, Seq included (see Record.MarshalJSON)
//	hash  = SHA-256(key || prevHash || body)
//
// The first record's prevHash is 32 zero bytes; every other record's
// prevHash is the stored hash of the record before it. Append reads the
// previous hash from the bucket in the same transaction (no in-memory
// cache), so any number of transactions and processes stay correct.
//
// # Verifying
//
// Log.Verify walks the bucket in order and checks that the keys are exactly
// 1..n, that each prevHash equals the previous record's hash, that each
// recomputed hash equals the stored one, that the body's seq equals its key,
// and that the bucket's sequence counter equals n (so deleting the newest
// records is also detected). It reports the first record that fails as a
// *ChainError. Verify hashes bytes and never decodes JSON, so a million
// records take well under a second.
//
// A hash chain cannot by itself detect someone who rewrites the whole log
// consistently from some record on. Anchor the chain by publishing Log.Head
// (seq and hash) somewhere the database's owner cannot rewrite, and compare
// it with a later Verify.
//
// # Reading and exporting
//
// Log.Query decodes records and passes those that match a Filter to a
// callback, in seq order. Log.Export writes them as JSON Lines or CSV, each
// row carrying prevHash and hash in hex so an auditor can re-verify the
// records offline (see Export for how).
//
// # Errors
//
// Functions return ErrNoBucket when Init has not run, ErrInvalidRecord or
// ErrInvalidFilter for bad input, ErrFormat for an unknown export format,
// ErrCorrupt when a stored value cannot be read back, and a *ChainError
// (which matches ErrTampered with errors.Is) when Verify finds a broken
// chain. bbolt and I/O errors are wrapped with %w.
package audit
