package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrysync/ferry/state"
)

// metrics are the daemon's Prometheus series.
type metrics struct {
	reg              *prometheus.Registry
	jobs             *prometheus.CounterVec
	filesTransferred *prometheus.CounterVec
	bytesTransferred *prometheus.CounterVec
	filesFailed      *prometheus.CounterVec
	queueDepth       *prometheus.GaugeVec
	lastSuccess      *prometheus.GaugeVec
	nextRun          *prometheus.GaugeVec
	watcherEvents    *prometheus.CounterVec
	watcherOverflows *prometheus.CounterVec
	remoteUp         *prometheus.GaugeVec
	policyRuns       *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_jobs_total",
			Help: "Finished jobs by plan and final status."}, []string{"plan", "status"}),
		filesTransferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_files_transferred_total",
			Help: "Files copied and verified, by plan."}, []string{"plan"}),
		bytesTransferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_bytes_transferred_total",
			Help: "Bytes copied and verified, by plan."}, []string{"plan"}),
		filesFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_files_failed_total",
			Help: "Files that failed, by plan."}, []string{"plan"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_queue_depth",
			Help: "Jobs waiting to run, by plan (0 or 1: triggers merge into one follow-up)."}, []string{"plan"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_last_success_timestamp_seconds",
			Help: "When the plan's last completed job ended (Unix time)."}, []string{"plan"}),
		nextRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_next_run_timestamp_seconds",
			Help: "When the plan's next scheduled run is due (Unix time)."}, []string{"plan"}),
		watcherEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_watcher_events_total",
			Help: "Changed paths reported by a plan's watcher."}, []string{"plan"}),
		watcherOverflows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_watcher_overflows_total",
			Help: "Times a plan's watcher lost events and fell back to a full scan."}, []string{"plan"}),
		remoteUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_remote_up",
			Help: "1 when the remote answered its last health probe, else 0."}, []string{"remote"}),
		policyRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_policy_runs_total",
			Help: "Backup and replication policy runs by kind, policy and outcome."}, []string{"kind", "policy", "status"}),
	}
	m.reg.MustRegister(m.policyRuns, m.jobs, m.filesTransferred, m.bytesTransferred, m.filesFailed, m.queueDepth,
		m.lastSuccess, m.nextRun, m.watcherEvents, m.watcherOverflows, m.remoteUp,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) jobFinished(j *state.Job) {
	m.jobs.WithLabelValues(j.Plan, j.Status).Inc()
	c := j.Counters
	m.filesTransferred.WithLabelValues(j.Plan).Add(float64(c.FilesTransferred - c.FilesResumed))
	m.bytesTransferred.WithLabelValues(j.Plan).Add(float64(c.BytesTransferred - c.BytesResumed))
	m.filesFailed.WithLabelValues(j.Plan).Add(float64(c.FilesFailed))
	if j.Status == state.JobCompleted {
		m.lastSuccess.WithLabelValues(j.Plan).Set(float64(j.Ended.Unix()))
	}
}

// serveMetrics serves /metrics on addr.
func (d *Daemon) serveMetrics(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server stopped", slog.Any("err", err))
		}
	}()
	d.log.Info("serving metrics", slog.String("addr", ln.Addr().String()))
	return srv, nil
}
