package workflows

import (
	"go.temporal.io/sdk/workflow"

	"koerier/pipeline"
)

// CertificateCheckWorkflow runs the daily certificate check: PKIoverheid certificates
// expire and Digipoort refuses an expired one (status 210 on every delivery), so the
// operator must hear of it weeks before (rule 19 in docs/rules.md).
func CertificateCheckWorkflow(ctx workflow.Context) (pipeline.CertificateCheckResult, error) {
	var res pipeline.CertificateCheckResult
	err := workflow.ExecuteActivity(storeOptions(ctx), a.CheckCertificates).Get(ctx, &res)
	return res, err
}
