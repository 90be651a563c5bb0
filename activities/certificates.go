package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// CheckCertificates reports when the Digipoort certificates expire and writes an F
// line for each warning that is due (60, 30 and 7 days before), once per certificate
// and threshold: a retry or a second run on the same day writes nothing new. It only
// reads the configuration and writes log lines, so it is idempotent; a worker without
// a Digipoort client configured fails it with a final error that says so.
func (a *Activities) CheckCertificates(ctx context.Context) (pipeline.CertificateCheckResult, error) {
	if a.Config.Certificates == nil {
		return pipeline.CertificateCheckResult{}, temporal.NewNonRetryableApplicationError("check certificates: this worker has no "+
			"Digipoort client configured (set the KOERIER_DIGIPOORT_* variables)", pipeline.ErrTypeInvalid, nil)
	}
	report := a.Config.Certificates()
	res := pipeline.CertificateCheckResult{CheckedAt: report.Now, ClientDaysLeft: report.ClientDaysLeft,
		Certificates: []string{}, Warnings: []string{}}
	for _, c := range report.Certificates {
		line := fmt.Sprintf("%s %s (serial %s): %s, until %s, %d days left", c.Role, c.Subject, c.Serial, c.State,
			c.NotAfter.UTC().Format(time.DateOnly), c.DaysLeft)
		if c.InUse {
			line += ", in use"
		}
		res.Certificates = append(res.Certificates, line)
		if c.Role == digipoort.RoleSigning && (res.SigningDaysLeft == nil || c.DaysLeft < *res.SigningDaysLeft) {
			d := c.DaysLeft
			res.SigningDaysLeft = &d
		}
	}
	for _, w := range report.Warnings {
		res.Warnings = append(res.Warnings, w.Message)
		if err := a.Store.WriteLog(ctx, store.LogEntry{Step: domain.StepCertificates, Level: domain.LevelError, Description: w.Message,
			DedupeKey: fmt.Sprintf("certificate/%s/%s/%d", w.Role, w.Serial, w.ThresholdDays)}); err != nil {
			return res, err
		}
	}
	a.log().WithField("warnings", len(res.Warnings)).Info("certificates checked")
	return res, nil
}
