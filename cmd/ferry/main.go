// Command ferry is Ferry's only binary: the daemon and the CLI that drives
// it. Each command group lives in its own file; commands parse flags, call a
// package and print. Only main turns errors into exit codes (exitcodes.go).
package main

import (
	"context"
	"fmt"
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
	if err != nil && !isSilent(err) {
		fmt.Fprintf(os.Stderr, "ferry: %v\n", err)
	}
	os.Exit(code)
}
