// Package mem is an in-memory remote.Store: a sorted map of immutable
// objects. It passes the remote/storetest conformance suite, so other
// packages' unit tests can use it as a real store without touching a disk
// or a network.
package mem
