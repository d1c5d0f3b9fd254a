package daemon

import (
	"os"
	"strings"

	"github.com/ferrysync/ferry/config"
)

// ScheduleString describes when a plan runs, for tables: "every 1h, watch".
func ScheduleString(scheduled, watch, changelist bool, every string) string {
	var parts []string
	if scheduled {
		parts = append(parts, "every "+every)
	}
	if watch {
		parts = append(parts, "watch")
	}
	if changelist {
		parts = append(parts, "changelist")
	}
	if len(parts) == 0 {
		return "Run Now only"
	}
	return strings.Join(parts, ", ")
}

func scheduleEvery(s *config.Schedule) string {
	if s == nil {
		return ""
	}
	return s.Every.String()
}

func pidSelf() int { return os.Getpid() }
