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
		key := fmt.Sprintf("certificate/%s/%s/%d", w.Role, w.Serial, w.ThresholdDays)
		if w.Serial == "" {
			// No certificate to name (none is usable at all): say it every day.
			key += "/" + report.Now.UTC().Format(time.DateOnly)
		}
		if err := a.Store.WriteLog(ctx, store.LogEntry{Step: domain.StepCertificates, Level: domain.LevelError, Description: w.Message,
			DedupeKey: key}); err != nil {
			return res, err
		}
	}
	// The client switches to the renewed certificate by itself once it is valid; if
	// Logius has not registered it yet, every delivery ends in 210 from then on. Say so
	// once, where operators look.
	if c, ok := report.InUseClient(); ok && c.Role == digipoort.RoleClientNext {
		msg := fmt.Sprintf("Koerier now uses the renewed client certificate %s (serial %s, valid until %s); if deliveries end in status 210, "+
			"Digipoort does not know it yet: have Logius register it, or remove %s to go back to the old one while it is valid", c.Subject, c.Serial,
			c.NotAfter.UTC().Format(time.DateOnly), digipoort.EnvClientCertNext+"/"+digipoort.EnvClientPFXNext)
		if err := a.Store.WriteLog(ctx, store.LogEntry{Step: domain.StepCertificates, Level: domain.LevelError, Description: msg,
			DedupeKey: "certificate/in-use/" + c.Serial}); err != nil {
			return res, err
		}
	}
	a.log().WithField("warnings", len(res.Warnings)).Info("certificates checked")
	return res, nil
}
