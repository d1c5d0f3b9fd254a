package daemon

import (
	"context"

	"github.com/ferrysync/ferry/config"
)

// startIncremental starts the watchers and changelist inboxes of the
// configuration's plans.
func (d *Daemon) startIncremental(ctx context.Context, cfg *config.Config) {
}
