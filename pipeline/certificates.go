package pipeline

import "time"

// CertificateCheckWorkflowType checks, daily, when the Digipoort certificates expire.
const CertificateCheckWorkflowType = "CertificateCheckWorkflow"

// CertificateCheckResult is what a certificate check found; the Web UI shows it as the
// result of each scheduled run, so an operator sees the days left without a command.
type CertificateCheckResult struct {
	CheckedAt time.Time `json:"checked_at"`
	// ClientDaysLeft is the days until the client certificate in use expires; nil when
	// none is usable.
	ClientDaysLeft *int `json:"client_days_left"`
	// SigningDaysLeft is the days until the first trusted signing certificate expires.
	SigningDaysLeft *int `json:"signing_days_left"`
	// Certificates is one line per configured certificate.
	Certificates []string `json:"certificates"`
	// Warnings are the warnings due today (60, 30 and 7 days before an expiry); each
	// is also an F line in the communication log, once per certificate and threshold.
	Warnings []string `json:"warnings"`
}
