package daemon

import (
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// sdNotify sends one sd_notify state to systemd; outside systemd
// (no NOTIFY_SOCKET) it does nothing.
func sdNotify(state string) {
	_, _ = daemon.SdNotify(false, state)
}

// startWatchdog pings systemd at half the unit's WatchdogSec, when the unit
// asks for it, until the returned function is called.
func startWatchdog(notify func(string)) (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				notify("WATCHDOG=1")
			}
		}
	}()
	return func() { close(done) }
}
