// Package storetest is the conformance suite for remote.Store: one set of
// tests that every implementation (remote/mem, remote/local, remote/s3)
// passes. An implementation's test file calls Run with a constructor for
// fresh, empty stores; deviations an implementation cannot avoid are
// Options fields, never a fork of the suite.
package storetest
