// Package vault keeps point-in-time, deduplicated backups of a local
// directory in a vault — a prefix on any remote.Store — and replicates them
// between vaults under Ferry's replication rules.
//
// On storage a vault is (docs/vault-format.md is the precise reference):
//
//	ferry-vault.json                   Info: format version, id, kind, account, chunker
//	backups/<id>.json                  Manifest: one backup (status, source, times, stats, tree)
//	trees/<sha256>                     Tree: every entry of the backup, gzip'd JSON
//	packs/<xx>/<sha256>                a pack of content chunks, then a trailer listing them
//	replications/<backup>/<rep>.json   Replication records of backups made from this vault
//	running/<kind>-<id>.json           markers of running backups, replications and prunes
//
// Writes go packs → tree → manifest, so a backup exists exactly when its
// manifest does: a failed or killed backup leaves no manifest, and the
// packs it uploaded are found (through their trailers) and their chunks
// reused by the next run. Files under SmallFileSize are one chunk; larger
// files are cut with FastCDC, so a changed disk image re-uploads only its
// changed parts. New chunks are packed into packs of about DefaultPackSize,
// each ending with a trailer (JSON) and a footer that index it, so one
// ranged read of a pack's end tells what it holds, and a tree names each
// chunk's pack and offset, so one ranged read fetches a chunk. Which
// chunks a vault has is the union of its packs' trailers; Options.CacheDir
// keeps them on the local disk (packs never change), so a backup lists
// packs/ and reads only the trailers of packs it has not seen.
//
// Prune and the writers (backup, replication into a vault) meet through the
// running markers: each writes its marker and then reads the others', so of
// a prune and a writer running at once at least one sees the other; a prune
// that sees a live writer deletes nothing, and a writer that sees a live
// prune waits for it to end before listing the packs it will reuse.
// Unreferenced objects younger than a grace period are kept in any case.
// Prune deletes a pack only when no backup uses any chunk in it.
// A marker whose heartbeat stopped, or whose process on this host is gone,
// is stale and ignored.
//
// Replication (Replicate) enforces the rules — only available backups, at
// most one account besides the one a backup was made in, replicas may come
// home, a repeat is a skip — and keeps Replication records in the source
// vault and the state database; RecoverReplications finishes or fails the
// ones a dead process left behind. Retain and RetainReplicas are the pure
// retention rules; ApplyRetention and ApplyReplicaRetention apply them.
//
// The package knows nothing of the CLI or the daemon: callers open stores
// (remote/connect) and pass them to Init and Open.
package vault
