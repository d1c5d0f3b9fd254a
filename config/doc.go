// Package config reads Ferry's TOML configuration: the whole schema (global
// settings, remotes, credentials, sync plans, vaults, backup and replication
// policies, alerts and mounts), strict decoding in which an unknown key is an
// error naming its file and line, the defaults, and validation that reports
// every problem at once, each with its key path and what would be valid.
//
// Load and Parse return a *Config that passed validation, or an error: a
// *ValidationError listing all problems, or an error wrapping ErrConfig when
// the file cannot be read. Secrets (secret_key, or the content of
// secret_key_file) are held in the Secret type, which prints as *** in text,
// logs and JSON. docs/config.md is the user's reference for every key; a test
// keeps it in step with the struct tags here.
package config
