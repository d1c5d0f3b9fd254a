// Command ferry is Ferry's only binary: the daemon and the CLI that drives
// it. Each command group lives in its own file; commands parse flags, call a
// package and print. Only main turns errors into exit codes (exitcodes.go).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globalOptions{stdout: os.Stdout, stderr: os.Stderr}
	root := newRootCommand(g)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	reportError(os.Stderr, err)
	os.Exit(code)
}

// reportError prints err for people, unless it is nil or was printed
// already. Errors name files, keys and paths, so the text is made
// printable: a name cannot send a terminal escape.
func reportError(w io.Writer, err error) {
	if err != nil && !isSilent(err) {
		fmt.Fprintf(w, "ferry: %s\n", printable(err.Error()))
	}
}
