// Package connectors is the contract between Roster's engine and the apps it
// manages (GitHub, Slack, Google Workspace, HubSpot, LDAP, the in-process
// memory app…).
//
// It holds only the contract and its value types: the Connector interface,
// the optional capability interfaces, the typed identifiers (WorkerID,
// AccountID, Entitlement), the Action a plan is made of, the State a
// snapshot returns, the error kinds that let the executor choose between
// retrying and giving up, and the Registry that maps a connector type name
// to the function that opens an instance of it. It imports no other package
// of Roster's.
//
// Each app lives in its own package (connectors/memory, connectors/github…)
// that implements Connector and never imports a sibling; cmd/roster wires
// them into a Registry explicitly. Every implementation must pass the shared
// conformance suite in connectors/connectortest.
package connectors
