// Package remote is Ferry's storage abstraction: the Store interface that
// every data source and destination implements (a local directory, an S3
// bucket prefix, an in-memory map), the sentinel errors those
// implementations return, and the key rules that decide which names may be
// stored at all.
//
// Implementations live in sub-packages: remote/local, remote/s3 and
// remote/mem. remote/storetest is the conformance suite all of them pass.
package remote
