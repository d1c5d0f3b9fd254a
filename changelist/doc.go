// Package changelist turns "these paths changed" into lists a sync job can
// run: it reads ChangeList CSV files (Parse), hands out the lists dropped
// into an inbox one claim at a time (Inbox: a local directory or a prefix on
// a remote.Store, with done/ and rejected/ and a ledger of processed
// content), and watches a local source tree with fsnotify, aggregating its
// events into batches (Watcher).
//
// It produces change sets as plain paths (keys that pass remote.ValidateKey)
// and knows nothing of the sync engine; the daemon converts a List or a Batch
// into a syncer.ChangeSet. It is the only importer of fsnotify; no fsnotify
// type appears in its API. docs/changelist.md describes the file format, the
// inbox layout and the watcher's limits for users.
package changelist
