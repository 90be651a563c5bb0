package config

import (
	"strings"
	"testing"
	"time"

	"koerier/domain"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalAddress != "127.0.0.1:7233" || c.Namespace != "default" || c.TaskQueue != "koerier" || c.SendReceiveEvery != 15*time.Minute ||
		c.CleanupRetention != 0 || c.WorkerActivities != DefaultWorkerActivities || c.ControlActivities != DefaultControlActivities {
		t.Errorf("defaults: %+v", c)
	}
	// Not set: no scheduled clean-up (rule 8), not a 30-day one.
	if c, err := FromLookup(lookup(map[string]string{"KOERIER_CLEANUP_RETENTION": ""})); err != nil || c.CleanupRetention != 0 {
		t.Errorf("empty KOERIER_CLEANUP_RETENTION: %s %v", c.CleanupRetention, err)
	}
	if c, err := FromLookup(lookup(map[string]string{"KOERIER_CLEANUP_RETENTION": "30d"})); err != nil || c.CleanupRetention != domain.MinRetention {
		t.Errorf("KOERIER_CLEANUP_RETENTION=30d: %s %v", c.CleanupRetention, err)
	}
	if _, err := FromLookup(lookup(map[string]string{"KOERIER_CLEANUP_RETENTION": "0d"})); err == nil {
		t.Error("KOERIER_CLEANUP_RETENTION=0d: want an error (leave it unset for no scheduled clean-up)")
	}
	if c.WebhookRetryInitial != 10*time.Second {
		t.Errorf("webhook retry initial %s, want 10s", c.WebhookRetryInitial)
	}
	if c, err := FromLookup(lookup(map[string]string{"KOERIER_WEBHOOK_RETRY_INITIAL": "200ms"})); err != nil || c.WebhookRetryInitial != 200*time.Millisecond {
		t.Errorf("webhook retry initial 200ms: %s %v", c.WebhookRetryInitial, err)
	}
	if c.StickyCacheSize != DefaultStickyCacheSize || c.AanleverkenmerkPrefix != domain.DefaultAanleverkenmerkPrefix {
		t.Errorf("defaults: sticky cache %d, prefix %q", c.StickyCacheSize, c.AanleverkenmerkPrefix)
	}
	if c, err := FromLookup(lookup(map[string]string{"KOERIER_STICKY_CACHE_SIZE": "500"})); err != nil || c.StickyCacheSize != 500 {
		t.Errorf("sticky cache 500: %d %v", c.StickyCacheSize, err)
	}
	if !strings.Contains(c.DatabaseURL, "127.0.0.1:5432/koerier") {
		t.Errorf("database: %s", c.DatabaseURL)
	}
}

func TestSettingsAndErrors(t *testing.T) {
	c, err := FromLookup(lookup(map[string]string{"KOERIER_CLEANUP_RETENTION": "90d", "KOERIER_BERICHTSOORTEN": "ib=IB", "KOERIER_PAGE_SIZE": "50"}))
	if err != nil || c.CleanupRetention != 90*24*time.Hour || c.PageSize != 50 {
		t.Fatalf("%+v %v", c, err)
	}
	if spec, _ := c.Catalog.Lookup(domain.TypeIncomeTax); spec.Berichtsoort != "IB" {
		t.Error("berichtsoort not read")
	}
	for k, v := range map[string]string{
		"KOERIER_CLEANUP_RETENTION":      "29d",
		"KOERIER_SEND_WAIT":              "soon",
		"KOERIER_BERICHTSOORTEN":         "zz=1",
		"KOERIER_ROL":                    "Boss",
		"KOERIER_PARALLEL":               "0",
		"KOERIER_LOG_LEVEL":              "loud",
		"KOERIER_STICKY_CACHE_SIZE":      "lots",
		"KOERIER_AANLEVERKENMERK_PREFIX": "KR-1",
		"KOERIER_DB_MAX_CONNS":           "-1",
		"KOERIER_IDENTITY_TYPES":         "ib=BTW",
		"KOERIER_BIJLAGEN":               "vpb=maybe",
		"KOERIER_WEBHOOK_RETRY_INITIAL":  "1ms",
	} {
		if _, err := FromLookup(lookup(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: want an error naming the variable, got %v", k, v, err)
		}
	}
	// A page's wait for deliveries must end well inside the lock it renewed.
	if c, err := FromLookup(lookup(map[string]string{"KOERIER_SEND_WAIT": "20m"})); err != nil || c.SendWait != MaxSendWait {
		t.Errorf("KOERIER_SEND_WAIT=20m: %v %v", c.SendWait, err)
	}
	if _, err := FromLookup(lookup(map[string]string{"KOERIER_SEND_WAIT": "21m"})); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Errorf("KOERIER_SEND_WAIT=21m: want an error about the lock, got %v", err)
	}
}

// Identity types and attachments per message type: defaults, and settings read in the
// style of KOERIER_BERICHTSOORTEN.
func TestIdentityTypesAndAttachments(t *testing.T) {
	c, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if spec, _ := c.Catalog.Lookup(domain.TypeVAT); spec.IdentityType != domain.IdentityBTW || spec.Attachments {
		t.Errorf("default btw: %+v", spec)
	}
	c, err = FromLookup(lookup(map[string]string{"KOERIER_IDENTITY_TYPES": "btw=Fi,icp=Fi", "KOERIER_BIJLAGEN": "vpb=yes"}))
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[domain.MessageType]string{domain.TypeVAT: "Fi", domain.TypeICP: "Fi", domain.TypeVATFix: "BTW"} {
		if spec, _ := c.Catalog.Lookup(typ); spec.IdentityType != want {
			t.Errorf("%s identity type %q, want %q", typ, spec.IdentityType, want)
		}
	}
	if spec, _ := c.Catalog.Lookup(domain.TypeCorpTax); !spec.Attachments {
		t.Error("KOERIER_BIJLAGEN=vpb=yes not read")
	}
}
