package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"koerier/domain"
	"koerier/pipeline"
)

// A LoadMessage result as workflows/testdata/declaration-accepted.json recorded it: the
// Message must decode it field for field, or recorded histories replay differently.
const recordedMessage = `{"Number":1000001,"Direction":"out","Environment":"acme","EnvironmentActive":true,"AutoSend":true,"AutoProcess":true,
"Type":"btw","Subject":"001000044B37","Period":"2021-10","Declaration":"acme/btw/001000044B37/2021-10","Version":1,"LatestVersion":2,
"Attempt":1,"Status":"queued","EnvStatus":"queued","Reported":true,"DoNotSend":true,"NeedsAction":true,"NeedsActionReason":"why",
"Kenmerk":"K","Replies":[{"event_id":1,"kenmerk":"K","code":"105","status":"sent","time":"2026-11-25T19:05:26.048Z","description":"d","applied":true}]}`

func TestMessageKeepsTheRecordedWireFormat(t *testing.T) {
	var m pipeline.Message
	if err := json.Unmarshal([]byte(recordedMessage), &m); err != nil {
		t.Fatal(err)
	}
	want := pipeline.Message{Number: 1000001, Direction: domain.DirectionOut, Environment: "acme", EnvironmentActive: true, AutoSend: true,
		AutoProcess: true, Type: "btw", Subject: "001000044B37", Period: "2021-10", Declaration: "acme/btw/001000044B37/2021-10", Version: 1,
		LatestVersion: 2, Attempt: 1, Status: domain.StatusQueued, EnvStatus: domain.StatusQueued, Reported: true, DoNotSend: true,
		NeedsAction: true, NeedsActionReason: "why", Kenmerk: "K"}
	replies := m.Replies
	m.Replies = nil
	if !reflect.DeepEqual(m, want) {
		t.Errorf("decoded %+v\nwant     %+v", m, want)
	}
	if len(replies) != 1 || replies[0].EventID != 1 || replies[0].Status != domain.StatusSent || !replies[0].Applied {
		t.Errorf("replies %+v", replies)
	}
	var recorded, encoded map[string]any
	out, _ := json.Marshal(m)
	_ = json.Unmarshal([]byte(recordedMessage), &recorded)
	_ = json.Unmarshal(out, &encoded)
	delete(recorded, "Replies")
	delete(encoded, "Replies")
	// Every recorded key is still written (a new field may be added: old payloads decode
	// it as its zero value).
	for _, k := range keys(recorded) {
		if _, ok := encoded[k]; !ok {
			t.Errorf("recorded key %s is no longer written (encoded: %v)", k, keys(encoded))
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type recordingClient struct {
	options []client.StartWorkflowOptions
	signals []string
	inputs  []pipeline.DeclarationInput
	err     error
}

func (c *recordingClient) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ interface{}, args ...interface{}) (client.WorkflowRun, error) {
	c.options = append(c.options, o)
	c.inputs = append(c.inputs, args[0].(pipeline.DeclarationInput))
	return nil, c.err
}

func (c *recordingClient) SignalWithStartWorkflow(_ context.Context, id, signal string, _ interface{}, o client.StartWorkflowOptions,
	_ interface{}, args ...interface{}) (client.WorkflowRun, error) {
	if id != o.ID {
		return nil, fmt.Errorf("id %s and options' id %s differ", id, o.ID)
	}
	c.options = append(c.options, o)
	c.signals = append(c.signals, signal)
	c.inputs = append(c.inputs, args[0].(pipeline.DeclarationInput))
	return nil, c.err
}

// Every start and signal of a declaration carries the same id, summary and search
// attributes, whoever starts it.
func TestStarterUsesOneSetOfOptions(t *testing.T) {
	c := &recordingClient{}
	s := pipeline.Starter{Client: c, NoReplyTimeout: time.Hour}
	m := pipeline.Message{Number: 42, Environment: "acme", Type: "btw", Subject: "NL1", Period: "2026-10", Declaration: "acme/btw/NL1/2026-10",
		Version: 2, Status: domain.StatusSent, Kenmerk: "K"}
	if err := s.Start(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := s.Signal(context.Background(), m, pipeline.SignalProcess, pipeline.OperatorSignal{By: "test"}); err != nil {
		t.Fatal(err)
	}
	if len(c.options) != 2 || c.signals[0] != pipeline.SignalProcess {
		t.Fatalf("calls: %+v %v", c.options, c.signals)
	}
	for _, o := range c.options {
		if o.ID != "message-42" || o.TaskQueue != pipeline.DefaultTaskQueue || o.StaticSummary != "btw NL1 2026-10 v2 · acme" ||
			o.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE {
			t.Errorf("options %+v", o)
		}
		if got := pipeline.CurrentAttributesKey(o.TypedSearchAttributes); got != m.AttributesKey() {
			t.Errorf("search attributes %q, want %q", got, m.AttributesKey())
		}
	}
	for _, in := range c.inputs {
		if in != (pipeline.DeclarationInput{Number: 42, NoReplyTimeout: time.Hour}) {
			t.Errorf("input %+v", in)
		}
	}
	c.err = errors.New("frontend unavailable")
	if err := s.Signal(context.Background(), m, pipeline.SignalSend, pipeline.SendSignal{}); err == nil ||
		!strings.Contains(err.Error(), "signal send to message 42: frontend unavailable") {
		t.Errorf("error %v: want it to name the signal and the message", err)
	}
}

// RootMessage gives a person the activity's own words from an error that crossed
// Temporal twice (activity → workflow → client), without the frames around them and
// without the causes Temporal appends to an application error's text.
func TestRootMessageFindsTheActivitysWords(t *testing.T) {
	refused := errors.New("refused")
	for name, c := range map[string]struct {
		fail func() error
		want string
		typ  string
	}{
		// As activities' final() wraps a store refusal.
		"final": {func() error {
			err := fmt.Errorf("restore message 7: %w: message 7 is version 1, but version 2 exists", refused)
			return temporal.NewNonRetryableApplicationError(err.Error(), pipeline.ErrTypeRefused, err)
		}, "restore message 7: refused: message 7 is version 1, but version 2 exists", pipeline.ErrTypeRefused},
		// A transient error the activity returns as it is, wrapping its cause.
		"transient": {func() error {
			return fmt.Errorf("deliver message 7: %w", &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED})
		}, "deliver message 7: connect: connection refused", ""},
	} {
		t.Run(name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterActivityWithOptions(func(context.Context) error { return c.fail() }, activity.RegisterOptions{Name: "Fail"})
			env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
				ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
					RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
				if err := workflow.ExecuteActivity(ctx, "Fail").Get(ctx, nil); err != nil {
					return fmt.Errorf("send: %w", err)
				}
				return nil
			}, workflow.RegisterOptions{Name: "Wrapper"})
			env.ExecuteWorkflow("Wrapper")
			err := env.GetWorkflowError()
			if got := pipeline.RootMessage(err); got != c.want {
				t.Errorf("RootMessage(%v)\n = %q\nwant %q", err, got, c.want)
			}
			if c.typ != "" && (!pipeline.IsErrorType(err, c.typ) || pipeline.IsErrorType(err, pipeline.ErrTypeLockHeld)) {
				t.Errorf("IsErrorType(%v, %s) wrong", err, c.typ)
			}
		})
	}
	if got := pipeline.RootMessage(errors.New("plain")); got != "plain" {
		t.Errorf("plain error: %q", got)
	}
	if got := pipeline.RootMessage(temporal.NewApplicationError("the workflow's own words", "Invalid", errors.New("a cause"))); got != "the workflow's own words" {
		t.Errorf("application error without an activity: %q", got)
	}
	if got := pipeline.RootMessage(nil); got != "" {
		t.Errorf("nil error: %q", got)
	}
}
