// Package syncer is Ferry's sync engine. It runs one job of one plan:
// enumerate the candidates (a scan of the source, a list of files, or an
// explicit change set), filter them, decide per file with the state index and
// the conflict policy, slice the work into tasks, transfer with hashing,
// verify, and record every file in exactly one of the job's lists.
//
// Concurrency: Plan.Workers files transfer at once. The stream of files to
// transfer is cut into tasks of at most MaxFilesPerTask files and
// MaxBytesPerTask bytes; a task is the unit of checkpoint: when every file of
// a task is done, its index entries and list records are committed to the
// state database in one batch. A process killed mid-job loses at most the
// tasks in flight; the next run of the plan resumes the job and skips every
// file the index already records.
//
// A job's breaker stops it when its source or destination stops answering:
// after Engine.UnreachableAfter (60 s) of connection-level failures only, no
// file is started any more, transfers in flight are canceled, deletes do not
// run, and the job ends failed naming the side. Files not reached are in no
// list; the next run copies them.
//
// The engine knows nothing of the config file, the daemon or the CLI: the
// caller builds a Plan with opened stores.
package syncer
