package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrysync/ferry/config"
)

// Exit codes. This is the one table: `ferry --help`, the README and
// systemd/ferry.service (RestartPreventExitStatus) agree with it.
const (
	exitOK          = 0 // success; a job completed
	exitFailure     = 1 // an error not covered below; a job failed
	exitUsage       = 2 // bad command line: unknown flag, wrong arguments
	exitConfig      = 3 // the configuration file is missing or invalid
	exitPartial     = 4 // a job or a restore finished partially: some files skipped by error or failed
	exitUnavailable = 5 // a remote, the state database or the daemon could not be reached
	exitCanceled    = 6 // interrupted (Ctrl-C, SIGTERM) or canceled
)

var exitCodeTable = []struct {
	code int
	what string
}{
	{exitOK, "success (a job completed)"},
	{exitFailure, "error; a job failed"},
	{exitUsage, "bad command line"},
	{exitConfig, "configuration missing or invalid"},
	{exitPartial, "a job or a restore finished partially (some files failed)"},
	{exitUnavailable, "a remote, the state database or the daemon is unavailable"},
	{exitCanceled, "interrupted or canceled"},
}

func exitCodesHelp() string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	for _, e := range exitCodeTable {
		fmt.Fprintf(&b, "  %d  %s\n", e.code, e.what)
	}
	return b.String()
}

// usageError marks a bad command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries an explicit exit code, for commands whose outcome is not
// an error (a partial job) or whose message was already printed.
type exitError struct {
	code   int
	err    error
	silent bool // the message was printed already
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// unavailableError marks a failure to reach something (remote, daemon, state).
type unavailableError struct{ err error }

func (e unavailableError) Error() string { return e.err.Error() }
func (e unavailableError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	var ue usageError
	var ve *config.ValidationError
	var un unavailableError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ve), errors.Is(err, config.ErrConfig):
		return exitConfig
	case errors.As(err, &un):
		return exitUnavailable
	case errors.Is(err, context.Canceled):
		return exitCanceled
	}
	return exitFailure
}

func isSilent(err error) bool {
	var ee *exitError
	return errors.As(err, &ee) && ee.silent
}
