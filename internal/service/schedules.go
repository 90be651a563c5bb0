package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"koerier/domain"
	"koerier/internal/config"
	"koerier/pipeline"
	"koerier/store"
)

// Schedule ids, as the Web UI's Schedules tab shows them.
const (
	ScheduleSendReceive = "koerier-send-receive"
	ScheduleCleanup     = "koerier-cleanup"
	// ScheduleCertificates checks daily when the Digipoort certificates expire.
	ScheduleCertificates = "koerier-certificates"
)

// ScheduleResult says what ApplySchedules did to one schedule.
type ScheduleResult struct {
	ID     string `json:"id"`
	Action string `json:"action"` // created, updated, removed or not configured
	Every  string `json:"every"`
	// Why says why a schedule is absent (removed or not configured).
	Why string `json:"why,omitempty"`
}

// noCleanup is why there is no clean-up schedule: removal is irreversible, so it runs
// on a schedule only once someone chose a retention (rule 8 in docs/rules.md).
const noCleanup = "KOERIER_CLEANUP_RETENTION is not set: no scheduled clean-up (set it, e.g. 90d, and apply again to have one)"

// ApplySchedules creates Koerier's schedules, or brings existing ones in line with the
// configuration: running it twice changes nothing the second time. The clean-up
// schedule exists only while a retention is configured; without one an existing
// clean-up schedule is deleted.
func ApplySchedules(ctx context.Context, c client.Client, cfg config.Config) ([]ScheduleResult, error) {
	cleanup := cfg.CleanupRetention != 0
	if cleanup {
		if err := domain.ValidateRetention(cfg.CleanupRetention); err != nil {
			return nil, fmt.Errorf("KOERIER_CLEANUP_RETENTION: %w", err)
		}
	}
	specs := []struct {
		id    string
		every client.ScheduleSpec
		text  string
		act   *client.ScheduleWorkflowAction
		note  string
	}{
		{
			id:    ScheduleSendReceive,
			every: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.SendReceiveEvery}}},
			text:  cfg.SendReceiveEvery.String(),
			act: &client.ScheduleWorkflowAction{ID: "send-receive", Workflow: pipeline.SendReceiveWorkflowType, TaskQueue: cfg.TaskQueue,
				Args: []interface{}{pipeline.SendReceiveInput{Trigger: "schedule", PageSize: cfg.PageSize, SendWait: cfg.SendWait}}},
			note: "Koerier send/receive: send what is due, fetch every reply (replaces the 'geplande taak' verzenden en ontvangen)",
		},
		{
			id:    ScheduleCleanup,
			every: client.ScheduleSpec{CronExpressions: []string{"30 3 * * *"}},
			text:  "daily at 03:30",
			act: &client.ScheduleWorkflowAction{ID: "cleanup", Workflow: pipeline.CleanupWorkflowType, TaskQueue: cfg.TaskQueue,
				Args: []interface{}{
					pipeline.CleanupInput{
						CleanupRequest: pipeline.CleanupRequest{Mode: domain.CleanupStandard, Retention: cfg.CleanupRetention, Who: "scheduled clean-up"},
					},
				}},
			note: fmt.Sprintf("Koerier clean-up: remove messages older than %d days in the statuses rule 8 allows", int(cfg.CleanupRetention.Hours()/24)),
		},
		{
			id:    ScheduleCertificates,
			every: client.ScheduleSpec{CronExpressions: []string{"0 7 * * *"}},
			text:  "daily at 07:00",
			act: &client.ScheduleWorkflowAction{ID: "certificate-check", Workflow: pipeline.CertificateCheckWorkflowType,
				TaskQueue: cfg.TaskQueue},
			note: "Koerier certificate check: warns 60, 30 and 7 days before a Digipoort certificate expires (F line; days left in the result)",
		},
	}
	var out []ScheduleResult
	for _, s := range specs {
		h := c.ScheduleClient().GetHandle(ctx, s.id)
		_, err := h.Describe(ctx)
		var nf *serviceerror.NotFound
		if s.id == ScheduleCleanup && !cleanup {
			switch {
			case errors.As(err, &nf):
				out = append(out, ScheduleResult{ID: s.id, Action: "not configured", Why: noCleanup})
			case err != nil:
				return out, fmt.Errorf("read schedule %s: %w", s.id, err)
			default:
				if err := h.Delete(ctx); err != nil && !errors.As(err, &nf) {
					return out, fmt.Errorf("remove schedule %s: %w", s.id, err)
				}
				out = append(out, ScheduleResult{ID: s.id, Action: "removed", Why: noCleanup})
			}
			continue
		}
		switch {
		case errors.As(err, &nf):
			_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: s.id, Spec: s.every, Action: s.act, Note: s.note})
			if err != nil {
				return out, fmt.Errorf("create schedule %s: %w", s.id, err)
			}
			out = append(out, ScheduleResult{ID: s.id, Action: "created", Every: s.text})
		case err != nil:
			return out, fmt.Errorf("read schedule %s: %w", s.id, err)
		default:
			spec, act, note := s.every, s.act, s.note
			err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				sch := in.Description.Schedule
				sch.Spec = &spec
				sch.Action = act
				// The note names the retention: a changed one must not leave it stale.
				if sch.State != nil {
					sch.State.Note = note
				}
				return &client.ScheduleUpdate{Schedule: &sch}, nil
			}})
			if err != nil {
				return out, fmt.Errorf("update schedule %s: %w", s.id, err)
			}
			out = append(out, ScheduleResult{ID: s.id, Action: "updated", Every: s.text})
		}
	}
	return out, nil
}

// ApplyMailSchedules gives each environment in envs (those with a mailbox in their e-mail
// profile) its own e-mail send/receive schedule (rule 12 in docs/rules.md), visible in
// the Web UI's Schedules tab as koerier-mail-<environment>, and removes the schedules of
// environments no longer in envs. Running it twice changes nothing the second time.
func ApplyMailSchedules(ctx context.Context, c client.Client, cfg config.Config, envs []string) ([]ScheduleResult, error) {
	want := map[string]bool{}
	var out []ScheduleResult
	for _, env := range envs {
		want[pipeline.MailScheduleID(env)] = true
		r, err := ApplyMailSchedule(ctx, c, cfg, env, true)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	iter, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return out, fmt.Errorf("list schedules: %w", err)
	}
	for iter.HasNext() {
		entry, err := iter.Next()
		if err != nil {
			return out, fmt.Errorf("list schedules: %w", err)
		}
		env, mine := strings.CutPrefix(entry.ID, pipeline.MailScheduleID(""))
		if !mine || want[entry.ID] {
			continue
		}
		r, err := ApplyMailSchedule(ctx, c, cfg, env, false)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// noMailbox is why an environment has no e-mail schedule.
const noMailbox = "the environment has no mailbox in its e-mail profile, or is removed"

// ApplyMailSchedule creates or updates one environment's e-mail send/receive schedule
// when mailbox is set, and removes it otherwise (after its profile changed).
func ApplyMailSchedule(ctx context.Context, c client.Client, cfg config.Config, env string, mailbox bool) (ScheduleResult, error) {
	id := pipeline.MailScheduleID(env)
	h := c.ScheduleClient().GetHandle(ctx, id)
	_, err := h.Describe(ctx)
	var nf *serviceerror.NotFound
	if !mailbox {
		switch {
		case errors.As(err, &nf):
			return ScheduleResult{ID: id, Action: "not configured", Why: noMailbox}, nil
		case err != nil:
			return ScheduleResult{}, fmt.Errorf("read schedule %s: %w", id, err)
		}
		if err := h.Delete(ctx); err != nil && !errors.As(err, &nf) {
			return ScheduleResult{}, fmt.Errorf("remove schedule %s: %w", id, err)
		}
		return ScheduleResult{ID: id, Action: "removed", Why: noMailbox}, nil
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.MailEvery}}}
	act := &client.ScheduleWorkflowAction{ID: pipeline.MailRunID(env), Workflow: pipeline.MailSendReceiveWorkflowType, TaskQueue: cfg.TaskQueue,
		Args: []interface{}{pipeline.MailSendReceiveInput{Environment: env, Trigger: "schedule"}}}
	note := fmt.Sprintf("Koerier e-mail send/receive of environment %s: send its due e-invoices from its own mailbox, read its incoming mail", env)
	switch {
	case errors.As(err, &nf):
		if _, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: id, Spec: spec, Action: act, Note: note,
			// A run still reading a slow mailbox is not started twice.
			Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP}); err != nil {
			return ScheduleResult{}, fmt.Errorf("create schedule %s: %w", id, err)
		}
		return ScheduleResult{ID: id, Action: "created", Every: cfg.MailEvery.String()}, nil
	case err != nil:
		return ScheduleResult{}, fmt.Errorf("read schedule %s: %w", id, err)
	}
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		sch := in.Description.Schedule
		sch.Spec, sch.Action = &spec, act
		return &client.ScheduleUpdate{Schedule: &sch}, nil
	}})
	if err != nil {
		return ScheduleResult{}, fmt.Errorf("update schedule %s: %w", id, err)
	}
	return ScheduleResult{ID: id, Action: "updated", Every: cfg.MailEvery.String()}, nil
}

// MailEnvironmentLister is the store's list of environments with a mailbox.
type MailEnvironmentLister interface {
	MailEnvironments(ctx context.Context) ([]store.Environment, error)
}

// ApplyAllSchedules applies the service's schedules and every environment's e-mail
// schedule (`starter schedules apply`).
func ApplyAllSchedules(ctx context.Context, c client.Client, cfg config.Config, st MailEnvironmentLister) ([]ScheduleResult, error) {
	out, err := ApplySchedules(ctx, c, cfg)
	if err != nil {
		return out, err
	}
	envs, err := st.MailEnvironments(ctx)
	if err != nil {
		return out, err
	}
	names := make([]string, len(envs))
	for i, e := range envs {
		names[i] = e.Name
	}
	mail, err := ApplyMailSchedules(ctx, c, cfg, names)
	return append(out, mail...), err
}
