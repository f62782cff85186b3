// Package roster is the root of the Roster module. It holds only the
// sample company, embedded so `roster demo` runs anywhere without files.
// The engine lives in lifecycle, the CLI in cmd/roster.
package roster

import "embed"

// Sample is testdata/piedpiper: config, HR file, policies and policy tests
// of the fictional company Pied Piper.
//
//go:embed testdata/piedpiper/roster.yaml testdata/piedpiper/hr.csv testdata/piedpiper/policies testdata/piedpiper/tests
var Sample embed.FS
