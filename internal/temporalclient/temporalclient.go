// Package temporalclient connects to Temporal the way every Koerier process does, and
// makes sure the namespace has the search attributes operators query in the Web UI.
package temporalclient

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"koerier/pipeline"
)

// Dial connects to the Temporal frontend, failing with what to do when it is away.
func Dial(ctx context.Context, address, namespace string, log logrus.FieldLogger) (client.Client, error) {
	return DialWithMetrics(ctx, address, namespace, log, nil)
}

// DialWithMetrics is Dial with the SDK's own metrics (requests, polls, task latencies,
// the sticky cache) going to metrics; nil records none. A worker built on the client
// inherits it.
func DialWithMetrics(ctx context.Context, address, namespace string, log logrus.FieldLogger, metrics client.MetricsHandler) (client.Client, error) {
	dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := client.DialContext(dialCtx, client.Options{
		HostPort:       address,
		Namespace:      namespace,
		Logger:         Logger{log},
		MetricsHandler: metrics,
	})
	if err != nil {
		return nil, fmt.Errorf(
			"connect to Temporal at %s (namespace %s): %w; start it (`make run` does, or `temporal server start-dev`) or set KOERIER_TEMPORAL_ADDRESS",
			address,
			namespace,
			err,
		)
	}
	return c, nil
}

// Logger lets the Temporal SDK log through logrus, with its key-values as fields.
type Logger struct{ L logrus.FieldLogger }

var _ tlog.Logger = Logger{}

func (l Logger) entry(keyvals []interface{}) logrus.FieldLogger {
	lg := l.L
	if lg == nil {
		lg = logrus.StandardLogger()
	}
	fields := logrus.Fields{}
	for i := 0; i+1 < len(keyvals); i += 2 {
		fields[fmt.Sprint(keyvals[i])] = keyvals[i+1]
	}
	return lg.WithFields(fields)
}

func (l Logger) Debug(msg string, keyvals ...interface{}) { l.entry(keyvals).Debug(msg) }
func (l Logger) Info(msg string, keyvals ...interface{})  { l.entry(keyvals).Info(msg) }
func (l Logger) Warn(msg string, keyvals ...interface{})  { l.entry(keyvals).Warn(msg) }
func (l Logger) Error(msg string, keyvals ...interface{}) { l.entry(keyvals).Error(msg) }

// EnsureSearchAttributes registers Koerier's search attributes on the namespace where
// they are missing. A dev server started with --search-attribute has them already.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	svc := c.OperatorService()
	have, err := svc.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range pipeline.SearchAttributeTypes() {
		if _, ok := have.GetCustomAttributes()[name]; ok {
			continue
		}
		switch typ {
		case "Int":
			missing[name] = enumspb.INDEXED_VALUE_TYPE_INT
		default:
			missing[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := svc.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing}); err != nil {
		return fmt.Errorf(
			"register search attributes %v on namespace %s: %w (register them by hand with `temporal operator search-attribute create`)",
			keys(missing),
			namespace,
			err,
		)
	}
	return nil
}

func keys(m map[string]enumspb.IndexedValueType) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
