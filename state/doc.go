// Package state is Ferry's local database: the per-plan file index, job
// records and their file lists, multipart uploads to resume, and generic
// namespaced records for the changelist ledger, the backup catalog,
// replication records and mount caches. It is the only importer of badger;
// no badger type appears in its API.
//
// One process at a time opens a state directory. Open takes an exclusive
// flock on <dir>/ferry.lock (holding the owner's pid) before badger's own
// lock, so a second opener — another ferry process, or a second Open in
// the same process — gets an error wrapping ErrLocked that names the
// directory.
//
// # Key layout
//
// Every key starts with one byte naming its kind. Names inside keys are
// separated by a NUL byte (0x00), which no plan name, path, job ID, object
// key or namespace may contain (ErrInvalid), so each kind is ordered by
// its names byte-wise and a name's entries form one contiguous range.
//
//	m schema                              1 byte: schema version (1)
//	m seq.lists                           badger sequence lease numbering file-list records
//	f <plan> 0x00 <path>                  FileEntry, binary (codec.go)
//	j <jobID>                             Job, JSON
//	J <plan> 0x00 <jobID>                 empty: index of a plan's jobs
//	l <jobID> 0x00 <kind> <seq:8 BE>      FileRecord, binary; kind 's' success, 'k' skipped, 'f' failed
//	u <plan> 0x00 <key>                   Upload without its parts, JSON
//	p <plan> 0x00 <key> 0x00 <uploadID> 0x00 <part:4 BE>
//	                                      UploadPart, binary (number from the key)
//	r <ns> 0x00 <key>                     caller's JSON (PutRecord)
//
// Job IDs are "YYYYMMDDTHHMMSSZ-nnnn": the UTC second the job was created
// and a hex counter within that second, so key order is creation order.
// File-list records are numbered from one sequence for the whole database,
// leased in blocks that are persisted before use, so numbers only grow,
// across restarts too: key order within a list is insertion order.
//
// The file index holds millions of entries, so its values are a compact
// binary encoding (a version byte, varints, length-prefixed strings, hex
// strings such as SHA-256 stored as their bytes): 73 bytes for a typical
// entry against 273 as JSON, and about 67 bytes per entry on disk, key
// included, once badger has prefix-compressed the keys and Snappy the
// blocks. Job file-list records and upload parts use the same encoding.
// Everything else is JSON.
//
// Generic record namespaces (the ns of PutRecord) are owned by one
// package each; use a short name per kind, e.g. "changelist" for the
// ledger, "claim" for remote inbox claims, "backup", "replication",
// "mountcache".
//
// # What is durable when, and why
//
// Badger runs with SyncWrites off: a commit writes the change into the
// write-ahead log, a memory-mapped file, and returns without fsync.
//
//   - Once a write method returns, the change survives the process dying
//     in any way (a crash, SIGKILL, the OOM killer): the bytes are in the
//     kernel's page cache, which writes them to disk on its own.
//   - A power loss or kernel crash can lose the commits whose pages the
//     kernel had not yet written back (by default up to about 30 seconds
//     worth). On open badger replays the log and stops at the first entry
//     whose checksum fails, so what survives is a prefix of the commits,
//     never a torn one.
//
// Some commits are synced (fsync of the log) before the method returns,
// because losing them would cost more than the fsync:
//
//   - CreateJob and every UpdateJob that changes a job's status: a job
//     that ran must not vanish or come back "running" after it ended, so
//     that resume and alerts are right after a power cut.
//   - PutUpload of a new upload id: a lost multipart upload id would leave
//     an upload on the destination that nothing aborts (and that the store
//     bills for).
//
// Everything else is not synced, and it is safe to lose its last moments:
//
//   - The file index (PutFiles, DeleteFiles) is written only after a copy
//     was verified, so a lost PutFiles only means Ferry does not know the
//     destination already has that file: the next job sends it again and
//     verifies it. A lost DeleteFiles leaves an entry for a path the source
//     no longer has; the next full scan, which sees the path missing, drops
//     it again.
//   - File-list records (AppendFileRecords) and counter updates that keep
//     a job's status. The job's final UpdateJob, which changes the status,
//     is synced, and badger's log is sequential, so that fsync also makes
//     every earlier commit in the current log file durable. (Commits in an
//     older log file, one being turned into a table file, become durable
//     when badger fsyncs that table, normally within seconds; a power cut
//     in that window can lose some records of a job whose end survived.
//     The files themselves are safe: see the index above.)
//   - Upload progress (PutUpload again for the same id, PutUploadPart): a
//     lost part is uploaded again. Parts and the source hash state are
//     written in one transaction, so they always match.
//   - Generic records: callers that need one durable call Sync.
//
// # Iteration
//
// Iterating methods read in chunks of a thousand keys, each chunk in its own
// short read transaction, and call the callback outside any transaction.
// The callback may therefore write to the database, and a slow callback
// (a sync comparing the index with a remote listing) does not pin old data
// files. The price: an iteration is not one snapshot, and keys changed
// while it runs may or may not be seen.
//
// # Footprint
//
// Badger's defaults suit a database server (64 MiB memtables, five of
// them, a 256 MiB block cache, value-log files mmapped at 2 GiB). Open uses
// 8 MiB memtables (three), a 16 MiB block cache, values up to 64 KiB kept
// in the LSM tree itself and 64 MiB value-log files; see db.go for each
// reason. DropPlanIndex uses badger's DropPrefix, which briefly blocks all
// writes; the package makes writers wait for it instead of failing.
package state
