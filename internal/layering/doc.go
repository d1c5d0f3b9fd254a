// Package layering holds no code: its test checks that the packages keep
// the dependency direction of ARCHITECTURE.md (cmd → daemon → {syncer,
// vault, fusefs} → {changelist, state, remote, config}) and that each
// vendor library is imported by its one package only.
package layering
