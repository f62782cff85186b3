// Package config loads and validates roster.yaml, the file that tells a
// Roster instance where its data lives, which policy files to load, how the
// lifecycle and the executor behave, which mass changes need an approval,
// which connector instances exist, and how `roster serve` listens (the
// server block: address, TLS, timeouts, body limit, reconcile and tick
// intervals), whom its SCIM endpoint accepts (the scim block: named
// bearer tokens and attribute mapping overrides) and how its admin API is
// reached (the admin block: the Unix socket, and named bearer tokens with
// a role, admin or auditor).
//
// Load (or Parse) reads the file strictly: an unknown key anywhere, a value
// of the wrong type, a missing required key, an unsupported version, an
// unknown timezone, a malformed duration, a negative number, a percentage
// outside 0..100 or a bad connector name is an error. Every problem found is
// reported, not only the first: the returned error is an Errors value, a list
// of *Error each holding the file, line and column, a message and the
// offending source line, and printing it shows
//
//	roster.yaml:12:3: unknown key "concurency" in executor (did you mean "concurrency"?)
//	   12 |   concurency: 4
//	      |   ^
//
// A key missing from a block is reported at the block's own key (the parent),
// a key missing from the top level at the first key of the file. A config
// that fails to load is rejected whole: Load returns a nil *Config.
//
// YAML anchors, aliases and merge keys (<<) are followed; top-level keys
// starting with "x-" are ignored so shared anchored blocks have a home.
//
// Each connector's settings block is kept as parsed YAML and decoded later by
// the connector through Settings.Decode (the connectors.Settings interface),
// with the same strictness and with positions that point into roster.yaml.
//
// Secrets never appear in roster.yaml as values: a connector setting, a
// SCIM token or an admin token holds a reference, "env:NAME" or "file:PATH", resolved by
// ResolveSecret or Config.ResolveSecret (an inline SCIM token secret is a
// load error). SCIMToken.Errorf, AdminToken.Errorf and SCIM.MappingErrorf position problems
// found later, when serve resolves the tokens and checks the mapping.
// Errors name the variable or the file, never the value, and a source line
// shown in an error has any inline value of a token-, secret- or
// password-like key replaced by <redacted>.
//
// The package imports no other package of Roster's. It embeds the IANA time
// zone database (time/tzdata) so a timezone name is accepted or rejected the
// same way on every machine.
package config
