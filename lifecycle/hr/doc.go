// Package hr turns what HR sends into lifecycle.HRRecord values: CSV files
// for bulk loads (ReadCSV, Import) and, later, the SCIM 2.0 service
// provider.
//
// ReadCSV rejects a file with any bad row as a whole, naming the line and
// column, so a half-imported company never happens by accident.
package hr
