// Package hr turns what HR sends into lifecycle.HRRecord values.
//
//   - CSV files for bulk loads (ReadCSV, Import). ReadCSV rejects a file
//     with any bad row as a whole, naming the line and column, so a
//     half-imported company never happens by accident; Import keeps the
//     stored value of every column a file does not have.
//   - The SCIM 2.0 service provider (NewSCIM) that HR systems and identity
//     providers (Microsoft Entra ID, Okta, OneLogin) drive: Users with the
//     enterprise extension and Roster's own extension, Groups, and the
//     discovery endpoints. It is built on github.com/elimity-com/scim; a
//     thin, documented layer in front of it (scim_normalize.go) accepts the
//     forms real clients send that the library would reject, and PATCH
//     operations and filters are applied here (scim_patch.go,
//     scim_filter.go). Every write goes through a Store (the engine) and is
//     audited with the bearer token's name as the actor.
//
// Errors: a malformed or unauthorised request gets a SCIM error response
// (RFC 7644 §3.12) and changes nothing.
package hr
