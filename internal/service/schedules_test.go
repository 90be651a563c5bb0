package service_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"koerier/internal/config"
	"koerier/internal/service"
	"koerier/internal/temporalclient"
	"koerier/internal/testenv"
	"koerier/pipeline"
)

// Rule 8: clean-up runs on a schedule only while a retention is configured; applying
// without one creates none and removes one that exists, and says so. Against the
// Temporal dev server.
func TestApplySchedulesCleanupOnlyWithARetention(t *testing.T) {
	srv := testenv.TemporalServer(t)
	ctx := context.Background()
	c, err := temporalclient.Dial(ctx, srv.FrontendHostPort(), testenv.Namespace(t, srv), discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg, err := config.FromLookup(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	actions := func(res []service.ScheduleResult) map[string]string {
		m := map[string]string{}
		for _, r := range res {
			m[r.ID] = r.Action
			if r.Action == "removed" || r.Action == "not configured" {
				if !strings.Contains(r.Why, "KOERIER_CLEANUP_RETENTION is not set") {
					t.Errorf("%s %s without saying why: %+v", r.ID, r.Action, r)
				}
			}
		}
		return m
	}
	exists := func(id string) bool {
		t.Helper()
		_, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	}

	res, err := service.ApplySchedules(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := actions(res); a[service.ScheduleCleanup] != "not configured" || a[service.ScheduleSendReceive] != "created" || exists(service.ScheduleCleanup) {
		t.Fatalf("without a retention: %+v", res)
	}

	cfg.CleanupRetention = 90 * 24 * time.Hour
	res, err = service.ApplySchedules(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := actions(res); a[service.ScheduleCleanup] != "created" || !exists(service.ScheduleCleanup) {
		t.Fatalf("with a retention: %+v", res)
	}
	cfg.CleanupRetention = 120 * 24 * time.Hour
	if _, err := service.ApplySchedules(ctx, c, cfg); err != nil {
		t.Fatal(err)
	}
	d, err := c.ScheduleClient().GetHandle(ctx, service.ScheduleCleanup).Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || d.Schedule.State == nil || !strings.Contains(d.Schedule.State.Note, "120 days") {
		t.Fatalf("updated clean-up schedule: %+v", d.Schedule)
	}
	// Applying moves the runs to the control queue, also for a schedule made before it.
	if act.TaskQueue != pipeline.ControlQueue(cfg.TaskQueue) {
		t.Errorf("clean-up schedule starts on task queue %q, want %q", act.TaskQueue, pipeline.ControlQueue(cfg.TaskQueue))
	}
	var in pipeline.CleanupInput
	if len(act.Args) != 1 {
		t.Fatalf("clean-up schedule args: %+v", act.Args)
	}
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		t.Fatalf("clean-up schedule arg %T", act.Args[0])
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil || in.Retention != 120*24*time.Hour {
		t.Errorf("clean-up schedule runs with %+v (%v), want a retention of 120 days", in, err)
	}

	cfg.CleanupRetention = 0
	res, err = service.ApplySchedules(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := actions(res); a[service.ScheduleCleanup] != "removed" || exists(service.ScheduleCleanup) || !exists(service.ScheduleSendReceive) {
		t.Fatalf("after the retention was unset: %+v", res)
	}
}

func discard() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
