package e2e

import (
	"go.temporal.io/api/workflowservice/v1"

	"koerier/internal/testenv"
)

func listRequest(s *testenv.Stack, query string) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.Namespace, Query: query}
}
