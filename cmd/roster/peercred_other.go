//go:build !linux

package main

import "net"

// peerUID is not available on this system: the socket's mode (0600, owner
// only) is the only check, and callers are named as the server's user.
func peerUID(net.Conn) (int, bool) { return 0, false }

// peerUIDAlways reports whether peerUID always knows the peer here.
const peerUIDAlways = false
