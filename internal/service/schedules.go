package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
			act: &client.ScheduleWorkflowAction{ID: "send-receive", Workflow: pipeline.SendReceiveWorkflowType, TaskQueue: pipeline.ControlQueue(cfg.TaskQueue),
				Args: []interface{}{pipeline.SendReceiveInput{Trigger: "schedule", PageSize: cfg.PageSize, SendWait: cfg.SendWait}}},
			note: "Koerier send/receive: send what is due, fetch every reply (replaces the 'geplande taak' verzenden en ontvangen)",
		},
		{
			id:    ScheduleCleanup,
			every: client.ScheduleSpec{CronExpressions: []string{"30 3 * * *"}},
			text:  "daily at 03:30",
			act: &client.ScheduleWorkflowAction{ID: "cleanup", Workflow: pipeline.CleanupWorkflowType, TaskQueue: pipeline.ControlQueue(cfg.TaskQueue),
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
				TaskQueue: pipeline.ControlQueue(cfg.TaskQueue)},
			note: "Koerier certificate check: warns 60, 30 and 7 days before a Digipoort certificate expires (F line; days left in the result)",
		},
	}
	var out []ScheduleResult
	for _, s := range specs {
		h := c.ScheduleClient().GetHandle(ctx, s.id)
		_, err := h.Describe(ctx)
		var nf *serviceerror.NotFound
		if s.id == ScheduleCleanup && !cleanup {
			r, err := absentSchedule(ctx, h, s.id, noCleanup, err)
			if err != nil {
				return out, err
			}
			out = append(out, r)
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

// absentSchedule removes a schedule that should not exist (why says why), given what
// describing it returned: "not configured" when there is none, "removed" when there was.
func absentSchedule(ctx context.Context, h client.ScheduleHandle, id, why string, described error) (ScheduleResult, error) {
	var nf *serviceerror.NotFound
	switch {
	case errors.As(described, &nf):
		return ScheduleResult{ID: id, Action: "not configured", Why: why}, nil
	case described != nil:
		return ScheduleResult{}, fmt.Errorf("read schedule %s: %w", id, described)
	}
	if err := h.Delete(ctx); err != nil && !errors.As(err, &nf) {
		return ScheduleResult{}, fmt.Errorf("remove schedule %s: %w", id, err)
	}
	return ScheduleResult{ID: id, Action: "removed", Why: why}, nil
}

// noMailbox is why an environment has no e-mail schedule.
const noMailbox = "the environment has no e-mail profile, or is removed"

// noBank is why an environment has no bank schedule.
const noBank = "the environment has no bank profile, or is removed"

// channelSchedule is one environment's send/receive schedule on a channel of its own.
type channelSchedule struct {
	id, why, note string
	every         time.Duration
	act           *client.ScheduleWorkflowAction
}

func mailSchedule(cfg config.Config, env string) channelSchedule {
	return channelSchedule{id: pipeline.MailScheduleID(env), why: noMailbox, every: cfg.MailEvery,
		note: fmt.Sprintf("Koerier e-mail send/receive of environment %s: send its due e-invoices from its own profile, read its mailbox if it has one", env),
		act: &client.ScheduleWorkflowAction{ID: pipeline.MailRunID(env), Workflow: pipeline.MailSendReceiveWorkflowType, TaskQueue: pipeline.ControlQueue(cfg.TaskQueue),
			Args: []interface{}{pipeline.MailSendReceiveInput{Environment: env, Trigger: "schedule"}}}}
}

func bankSchedule(cfg config.Config, env string) channelSchedule {
	return channelSchedule{id: pipeline.BankScheduleID(env), why: noBank, every: cfg.BankEvery,
		note: fmt.Sprintf("Koerier bank send/receive of environment %s: upload its due payment orders, fetch the bank's status reports", env),
		act: &client.ScheduleWorkflowAction{ID: pipeline.BankRunID(env), Workflow: pipeline.BankSendReceiveWorkflowType, TaskQueue: pipeline.ControlQueue(cfg.TaskQueue),
			Args: []interface{}{pipeline.BankSendReceiveInput{Environment: env, Trigger: "schedule"}}}}
}

// ApplyMailSchedule creates or updates one environment's e-mail send/receive schedule
// when mailbox is set, and removes it otherwise (after its profile changed).
func ApplyMailSchedule(ctx context.Context, c client.Client, cfg config.Config, env string, mailbox bool) (ScheduleResult, error) {
	return applyChannelSchedule(ctx, c, mailSchedule(cfg, env), mailbox)
}

// ApplyBankSchedule creates or updates one environment's bank send/receive schedule when
// it has a bank profile, and removes it otherwise.
func ApplyBankSchedule(ctx context.Context, c client.Client, cfg config.Config, env string, bank bool) (ScheduleResult, error) {
	return applyChannelSchedule(ctx, c, bankSchedule(cfg, env), bank)
}

func applyChannelSchedule(ctx context.Context, c client.Client, sc channelSchedule, present bool) (ScheduleResult, error) {
	h := c.ScheduleClient().GetHandle(ctx, sc.id)
	_, err := h.Describe(ctx)
	var nf *serviceerror.NotFound
	if !present {
		return absentSchedule(ctx, h, sc.id, sc.why, err)
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: sc.every}}}
	switch {
	case errors.As(err, &nf):
		if _, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: sc.id, Spec: spec, Action: sc.act, Note: sc.note,
			// A run still busy with a slow server is not started twice.
			Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP}); err != nil {
			return ScheduleResult{}, fmt.Errorf("create schedule %s: %w", sc.id, err)
		}
		return ScheduleResult{ID: sc.id, Action: "created", Every: sc.every.String()}, nil
	case err != nil:
		return ScheduleResult{}, fmt.Errorf("read schedule %s: %w", sc.id, err)
	}
	act := sc.act
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		sch := in.Description.Schedule
		sch.Spec, sch.Action = &spec, act
		return &client.ScheduleUpdate{Schedule: &sch}, nil
	}})
	if err != nil {
		return ScheduleResult{}, fmt.Errorf("update schedule %s: %w", sc.id, err)
	}
	return ScheduleResult{ID: sc.id, Action: "updated", Every: sc.every.String()}, nil
}

// ChannelEnvironmentLister lists the environments with a mailbox and with a bank
// profile (*store.Store).
type ChannelEnvironmentLister interface {
	MailEnvironments(ctx context.Context) ([]store.Environment, error)
	BankEnvironments(ctx context.Context) ([]store.Environment, error)
}

// ApplyAllSchedules applies the service's schedules, and gives every environment with a
// mailbox its e-mail send/receive and every environment with a bank profile its bank
// send/receive (rules 22 and 23), visible in the Web UI's Schedules tab as
// koerier-mail-<environment> and koerier-bank-<environment>; the schedules of
// environments that no longer have the profile are removed. Running it twice changes
// nothing the second time (`starter schedules apply`).
func ApplyAllSchedules(ctx context.Context, c client.Client, cfg config.Config, st ChannelEnvironmentLister) ([]ScheduleResult, error) {
	out, err := ApplySchedules(ctx, c, cfg)
	if err != nil {
		return out, err
	}
	channels := []struct {
		list   func(ctx context.Context) ([]store.Environment, error)
		prefix string
		apply  func(ctx context.Context, c client.Client, cfg config.Config, env string, present bool) (ScheduleResult, error)
	}{
		{st.MailEnvironments, pipeline.MailScheduleID(""), ApplyMailSchedule},
		{st.BankEnvironments, pipeline.BankScheduleID(""), ApplyBankSchedule},
	}
	want := map[string]bool{}
	for _, ch := range channels {
		envs, err := ch.list(ctx)
		if err != nil {
			return out, err
		}
		for _, e := range envs {
			want[ch.prefix+e.Name] = true
			r, err := ch.apply(ctx, c, cfg, e.Name, true)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
	}
	iter, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return out, fmt.Errorf("list schedules: %w", err)
	}
	var stale []string
	for iter.HasNext() {
		entry, err := iter.Next()
		if err != nil {
			return out, fmt.Errorf("list schedules: %w", err)
		}
		if !want[entry.ID] {
			stale = append(stale, entry.ID)
		}
	}
	for _, id := range stale {
		for _, ch := range channels {
			if env, ok := strings.CutPrefix(id, ch.prefix); ok {
				r, err := ch.apply(ctx, c, cfg, env, false)
				if err != nil {
					return out, err
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}
