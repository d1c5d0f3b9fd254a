// Package daemon is Ferry's long-running service: it runs every configured
// plan — on its schedule, on Run Now, on watcher batches and changelist
// arrivals, all through one queue per plan — serves the control API on a
// unix socket (server, and the Client the CLI uses), fires alerts, exports
// Prometheus metrics, and speaks sd_notify to systemd.
//
// Each moving part is a Serve(ctx) loop owned by one goroutine. A plan
// never runs twice at once; a trigger during a run queues at most one
// follow-up, which absorbs every later trigger until it starts.
package daemon
