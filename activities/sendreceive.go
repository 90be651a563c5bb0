package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// AcquireLock takes the send/receive lock for 30 minutes (rule 6 in docs/rules.md). A lock held by
// another run is a final LockHeld error that names the holder and when it is released.
func (a *Activities) AcquireLock(ctx context.Context, holder string) (pipeline.Lock, error) {
	l, err := a.Store.AcquireLock(ctx, store.LockSendReceive, holder, domain.LockDuration)
	return pipeline.Lock(l), final(err)
}

// RenewLock extends the lock of a long run by another 30 minutes from now.
func (a *Activities) RenewLock(ctx context.Context, holder string) (pipeline.Lock, error) {
	return a.AcquireLock(ctx, holder)
}

// ReleaseLock frees the lock if holder has it; releasing twice is harmless.
func (a *Activities) ReleaseLock(ctx context.Context, holder string) (bool, error) {
	ok, err := a.Store.ReleaseLock(ctx, store.LockSendReceive, holder)
	return ok, final(err)
}

// renewLock extends the send/receive lock before a page of the run that holds it, so
// that a page never runs unless its run holds the lock, without a round trip of its
// own per page. An empty holder is a run from before, which renews it itself. A run
// that lost the lock stops (final): another run took over.
func (a *Activities) renewLock(ctx context.Context, holder string) error {
	if holder == "" {
		return nil
	}
	_, err := a.Store.AcquireLock(ctx, store.LockSendReceive, holder, domain.LockDuration)
	var held *store.LockHeldError
	if errors.As(err, &held) {
		return final(fmt.Errorf("%s: %w", pipeline.LostLock, err))
	}
	if err != nil {
		return fmt.Errorf("renew the send/receive lock: %w", err)
	}
	return nil
}

// DispatchSends tells the workflows of one page of due messages to deliver, starting
// a workflow for a due message that has none (the process died between queueing and
// starting it, or it was terminated). Telling a workflow twice is harmless: a
// delivered attempt is not delivered again.
func (a *Activities) DispatchSends(ctx context.Context, req pipeline.DispatchRequest) (pipeline.DispatchResult, error) {
	defer keepAlive(ctx)()
	if err := a.renewLock(ctx, req.Holder); err != nil {
		return pipeline.DispatchResult{}, err
	}
	due, err := a.Store.DueMessages(ctx, req.After, req.Limit)
	if err != nil {
		return pipeline.DispatchResult{}, err
	}
	res := pipeline.DispatchResult{Next: req.After, More: len(due) == req.Limit}
	if len(due) == 0 {
		return res, nil
	}
	numbers := make([]int64, len(due))
	for i, d := range due {
		numbers[i] = d.Number
	}
	sig := pipeline.SendSignal{By: req.By}
	if err := a.signalAll(ctx, numbers, func(int64) (string, any) { return pipeline.SignalSend, sig }, nil); err != nil {
		return pipeline.DispatchResult{}, err
	}
	res.Numbers, res.Next = numbers, numbers[len(numbers)-1]
	return res, nil
}

// signalAll signals (and where needed starts) the workflows of the messages, a bounded
// number at a time; ok is called for each one that was told.
func (a *Activities) signalAll(ctx context.Context, numbers []int64, signal func(n int64) (string, any), ok func(n int64)) error {
	messages, err := a.Store.Declarations(ctx, numbers)
	if err != nil {
		return err
	}
	errs := a.forEach(ctx, len(numbers), func(i int) error {
		n := numbers[i]
		m, found := messages[n]
		if !found {
			// Cleaned up meanwhile (its stored replies went with it): nothing to tell,
			// and nothing left to tell later.
			a.log().WithField("message", n).Warn("message is gone; its workflow is not signalled")
			if ok != nil {
				ok(n)
			}
			return nil
		}
		name, arg := signal(n)
		if err := a.Config.Starter.Signal(ctx, m, name, arg); err != nil {
			return err
		}
		if ok != nil {
			ok(n)
		}
		return nil
	})
	return errors.Join(errs...)
}

// forEach runs fn for 0..n-1, at most Config.Parallel at once, and returns each call's
// error in its place: one failed call does not stop the others (each is a message of
// its own), but a cancelled activity stops starting new ones.
func (a *Activities) forEach(ctx context.Context, n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var g errgroup.Group
	if a.Config.Parallel > 0 {
		g.SetLimit(a.Config.Parallel)
	}
	for i := range n {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		g.Go(func() error {
			errs[i] = fn(i)
			return nil
		})
	}
	_ = g.Wait() // the errors are in errs
	return errs
}

// AwaitSendOutcomes polls Postgres until every dispatched message has an outcome or
// the timeout passes; it heartbeats while it waits. What is still pending is returned,
// not an error: those messages stay due for the next run.
func (a *Activities) AwaitSendOutcomes(ctx context.Context, req pipeline.AwaitRequest) (pipeline.SendOutcome, error) {
	if err := a.renewLock(ctx, req.Holder); err != nil {
		return pipeline.SendOutcome{}, err
	}
	deadline := time.Now().Add(req.Timeout)
	for {
		out, err := a.Store.SendOutcomes(ctx, req.Numbers, req.Since)
		if err != nil {
			return pipeline.SendOutcome{}, err
		}
		if len(out.Pending) == 0 || time.Now().After(deadline) {
			return out, nil
		}
		activity.RecordHeartbeat(ctx, len(out.Pending))
		select {
		case <-ctx.Done():
			return pipeline.SendOutcome{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ReceiveStatuses fetches every status of one page of deliveries in flight, stores
// them (each once; the highest wins, decided in SQL), keeps statuses that name a
// kenmerk Koerier never delivered as unknown replies, and signals each message's
// workflow once with its new replies. A status request Digipoort refuses for good is
// logged (F) and the page goes on; transient trouble fails the page after storing
// what did arrive, for Temporal to retry.
func (a *Activities) ReceiveStatuses(ctx context.Context, req pipeline.ReceiveRequest) (pipeline.ReceiveResult, error) {
	defer keepAlive(ctx)()
	if err := a.renewLock(ctx, req.Holder); err != nil {
		return pipeline.ReceiveResult{}, err
	}
	inflight, err := a.Store.InFlightDeliveries(ctx, req.After, req.Limit)
	if err != nil {
		return pipeline.ReceiveResult{}, err
	}
	res := pipeline.ReceiveResult{Next: req.After, More: len(inflight) == req.Limit, Deliveries: len(inflight)}
	if len(inflight) == 0 {
		return res, nil
	}
	res.Next = inflight[len(inflight)-1].Number
	statuses, errs := a.fetchStatuses(ctx, inflight)
	if res.Replies, res.Duplicates, res.Unknown, err = a.storeStatuses(ctx, inflight, statuses); err != nil {
		return pipeline.ReceiveResult{}, err
	}
	numbers := make([]int64, len(inflight))
	for i, d := range inflight {
		numbers[i] = d.Number
	}
	if err := a.signalReplies(ctx, numbers); err != nil {
		return pipeline.ReceiveResult{}, err
	}
	var answered []int64
	for i, e := range errs {
		if e == nil {
			answered = append(answered, inflight[i].Number)
		}
	}
	if err := a.Store.ClearStatusRefusals(ctx, answered); err != nil {
		return pipeline.ReceiveResult{}, err
	}
	res.Errors, err = a.statusErrors(ctx, inflight, errs)
	return res, err
}

// fetchStatuses asks Digipoort for the statuses of each delivery; statuses[i] and
// errs[i] belong to inflight[i].
func (a *Activities) fetchStatuses(ctx context.Context, inflight []store.InFlight) (statuses [][]digipoort.Status, errs []error) {
	statuses = make([][]digipoort.Status, len(inflight))
	errs = a.forEach(ctx, len(inflight), func(i int) error {
		d := inflight[i]
		var p proofs
		st, err := a.Digipoort.Statuses(p.recording(ctx), d.Kenmerk, d.StartedAt.Add(-time.Hour), time.Time{})
		// A 210 comes with the statuses themselves: they carry the failure (and its
		// advice) to the message like any other final status.
		statuses[i] = st
		if kerr := a.keepProofs(ctx, d.Number, d.Attempt, d.Kenmerk, &p); kerr != nil {
			// Not stored without their proof: a final status would take the message out
			// of flight, and no later answer would prove it. The retry asks again, and
			// getStatussenProces returns them all in an answer signed afresh.
			statuses[i] = nil
			return fmt.Errorf("statuses of message %d (kenmerk %s): Digipoort's signed answer could not be kept as proof of filing, so "+
				"its statuses are not stored yet; asking again: %w", d.Number, d.Kenmerk, kerr)
		}
		var de *digipoort.Error
		if err != nil && !(errors.As(err, &de) && de.Statuscode == "210" && len(st) > 0) {
			return fmt.Errorf("statuses of message %d (kenmerk %s): %w", d.Number, d.Kenmerk, err)
		}
		return nil
	})
	return statuses, errs
}

// storeStatuses keeps the statuses: those of the kenmerk asked for as replies, the
// rest (another kenmerk in the answer, a kenmerk no delivery has) as unknown replies.
// A code Koerier does not know gets an F line on its message.
func (a *Activities) storeStatuses(
	ctx context.Context,
	inflight []store.InFlight,
	statuses [][]digipoort.Status,
) (replies, duplicates, unknown int, err error) {
	var toApply []store.Reply
	var strays []store.IncomingDoc
	for i, d := range inflight {
		for _, s := range statuses[i] {
			if s.Kenmerk != d.Kenmerk {
				strays = append(strays, store.IncomingDoc{PickupKenmerk: s.Kenmerk, Berichtkenmerk: store.StatusBerichtkenmerk(s.Code, s.Time),
					Subject: s.Belanghebbende.Nummer,
					Note:    fmt.Sprintf("status %s (%s) for kenmerk %s, returned when asking for kenmerk %s", s.Code, s.Description, s.Kenmerk, d.Kenmerk)})
				continue
			}
			// Code and foutcode together: a 420 with AFS600 has failed (domain.InterpretStatus).
			// Details are kept as sent: the 500's are the authority's acknowledgement.
			r := store.ReplyFromStatus(s.Kenmerk, s.Code, s.ErrorCode, s.Time)
			if s.Description != "" {
				r.Description = s.Description
			}
			r.ErrorDescription, r.Details = s.ErrorDescription, s.Details
			toApply = append(toApply, r)
		}
	}
	applied, err := a.Store.ApplyReplies(ctx, toApply)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, r := range applied.New {
		info := domain.InterpretStatus(r.Code, r.ErrorCode)
		if info.Kind != domain.KindUnknown {
			continue
		}
		n := r.MessageNumber
		if err := a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepReceive, Level: domain.LevelError,
			Description: fmt.Sprintf("Digipoort status %s (%q) for message %d (kenmerk %s) is a code Koerier does not know; the message "+
				"needs an operator", r.Code, r.Description, n, r.Kenmerk),
			Information: info.Advice, DedupeKey: fmt.Sprintf("unknown-code/%d", r.EventID)}); err != nil {
			return 0, 0, 0, err
		}
	}
	for _, u := range applied.Unlinked {
		strays = append(strays, store.IncomingDoc{PickupKenmerk: u.Kenmerk, Berichtkenmerk: store.StatusBerichtkenmerk(u.Code, u.OccurredAt),
			Note: fmt.Sprintf("status %s for kenmerk %s that no delivery of Koerier has", u.Code, u.Kenmerk)})
	}
	if len(strays) > 0 {
		in, err := a.Store.StoreIncoming(ctx, strays)
		if err != nil {
			return 0, 0, 0, err
		}
		unknown = len(in.Unknown)
		a.startUnknownRepliesOrLeave(ctx, in.Unknown)
	}
	return len(applied.New), applied.Duplicates, unknown, nil
}

// statusErrors handles the status requests that failed. Digipoort refusing the kenmerk
// (an STS fault: STS100 "kenmerk onbekend" when it forgot the process) is asked again
// with back-off and marks the message needs-action once (refusedKenmerk); another final
// failure (an answer that cannot be trusted, say) is logged F once an hour per message
// and asked again next run; the transient ones are returned as one error, for Temporal
// to retry the page (what did arrive is stored already).
func (a *Activities) statusErrors(ctx context.Context, inflight []store.InFlight, errs []error) (int, error) {
	count := 0
	var transient []error
	for i, e := range errs {
		if e == nil {
			continue
		}
		count++
		if !digipoort.IsFinal(e) {
			transient = append(transient, e)
			continue
		}
		if refusedKenmerk(e) {
			if err := a.statusRefused(ctx, inflight[i], e); err != nil {
				return count, err
			}
			continue
		}
		n := inflight[i].Number
		if lerr := a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepReceive, Level: domain.LevelError,
			Description: e.Error(),
			Information: "nothing was stored from this answer; the next send/receive asks again — if this keeps happening, look the " +
				"kenmerk up with `starter digipoort status`",
			DedupeKey: fmt.Sprintf("status-refused/%d/%s", n, time.Now().UTC().Format("2006-01-02T15"))}); lerr != nil {
			return count, lerr
		}
	}
	if len(transient) > 0 {
		return count, fmt.Errorf("%d of %d status requests failed for now (the rest is stored): %w", len(transient), len(inflight), errors.Join(transient...))
	}
	return count, nil
}

// refusedKenmerk says whether Digipoort itself refused the status request for good: a
// final fault of the status service (foutcode STS…). Digipoort answers so for a
// kenmerk it does not know (any more); the real one stops knowing old processes.
func refusedKenmerk(err error) bool {
	var de *digipoort.Error
	return errors.As(err, &de) && de.Kind == digipoort.Final && strings.HasPrefix(strings.ToUpper(de.Foutcode), "STS")
}

// statusRefused records Digipoort's refusal of a kenmerk (rule 10): the delivery is
// asked again with back-off, and the first refusal in a row marks the message
// needs-action with what to do, writes one F line, and tells its workflow, so that the
// Web UI shows it. The message stays in flight: nothing is closed or lost.
func (a *Activities) statusRefused(ctx context.Context, d store.InFlight, cause error) error {
	reason := fmt.Sprintf("Digipoort refuses the statuses of message %d (kenmerk %s): %v", d.Number, d.Kenmerk, cause)
	info := fmt.Sprintf("Digipoort does not know this kenmerk (any more): it forgot the process, or the kenmerk is not of this "+
		"certificate. The message stays in flight and Koerier asks again, less and less often (after %s, then twice as long each "+
		"time, at most once every %s); this line is written once. Look the kenmerk up with `starter digipoort status --kenmerk %s`. "+
		"If Digipoort answers, its statuses are taken on the next ask and nothing else is needed. If it does not know the "+
		"process, find out with the recipient whether declaration %d arrived, and deliver it again or close it: Koerier does "+
		"neither by itself.",
		store.StatusRefusalFirstWait, store.StatusRefusalMaxWait, d.Kenmerk, d.Number)
	r, err := a.Store.RecordStatusRefusal(ctx, d.Number, d.Attempt, d.Kenmerk, reason, info)
	if err != nil || !r.First {
		return err
	}
	a.log().WithFields(map[string]any{"message": d.Number, "kenmerk": d.Kenmerk, "next_ask": r.NextAsk}).Warn("Digipoort refuses the kenmerk; asking again with back-off")
	sig := pipeline.RepliesSignal{Status: r.Status, Attempt: r.Attempt, NeedsAction: true}
	return a.signalAll(ctx, []int64{d.Number}, func(int64) (string, any) { return pipeline.SignalReplies, sig }, nil)
}

// repliesBatch bounds the stored replies one round of signalling reads.
const repliesBatch = 5000

// signalReplies tells workflows about stored replies they have not heard of, one
// signal per message, and marks them told. numbers nil means every message.
func (a *Activities) signalReplies(ctx context.Context, numbers []int64) error {
	for {
		pending, err := a.Store.UnsignaledReplies(ctx, numbers, repliesBatch)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		byMessage := map[int64]*pipeline.RepliesSignal{}
		ids := map[int64][]int64{}
		var order []int64
		for _, p := range pending {
			sig, ok := byMessage[p.MessageNumber]
			if !ok {
				sig = &pipeline.RepliesSignal{Status: p.MessageStatus, Attempt: p.MessageAttempt, NeedsAction: p.NeedsAction}
				byMessage[p.MessageNumber] = sig
				order = append(order, p.MessageNumber)
			}
			sig.Replies = append(sig.Replies, p.View())
			ids[p.MessageNumber] = append(ids[p.MessageNumber], p.EventID)
		}
		var mu sync.Mutex
		var done []int64
		err = a.signalAll(ctx, order, func(n int64) (string, any) { return pipeline.SignalReplies, *byMessage[n] }, func(n int64) {
			mu.Lock()
			done = append(done, ids[n]...)
			mu.Unlock()
		})
		if len(done) > 0 {
			if merr := a.Store.MarkSignaled(ctx, done); merr != nil {
				return merr
			}
		}
		if err != nil {
			return err
		}
		if len(pending) < repliesBatch {
			return nil
		}
	}
}

// SignalPendingReplies is the sweep at the end of a run: replies stored by a run that
// died before it could tell their workflows are told now, and every open unknown reply
// gets its workflow if it has none.
func (a *Activities) SignalPendingReplies(ctx context.Context) error {
	defer keepAlive(ctx)()
	// Every sweep runs whatever another one met: they are independent, and one failing
	// for good (Temporal refusing the ONB starts, say) must not starve the others.
	return errors.Join(a.signalReplies(ctx, nil), a.sweepUnknownReplies(ctx), a.sweepWebhooks(ctx))
}

// Webhook events pending longer than webhookStaleAfter are asked for again; after
// webhookExpireAfter (well past the sender's own retries) they are failed.
const (
	webhookStaleAfter  = time.Hour
	webhookExpireAfter = pipeline.WebhookRetryFor + 24*time.Hour
)

// sweepWebhooks makes sure no webhook event stays pending for good: a message whose
// workflow was terminated, or started before webhooks existed, is asked (with start) to
// post its events; an event no delivery took in webhookExpireAfter is failed with an F
// line. Signalling a workflow whose delivery is still retrying changes nothing.
func (a *Activities) sweepWebhooks(ctx context.Context) error {
	now := time.Now()
	if _, err := a.Store.ExpireWebhookEvents(ctx, now.Add(-webhookExpireAfter), fmt.Sprintf(
		"no delivery took it within %s; the environment reads the message's status instead", webhookExpireAfter)); err != nil {
		return err
	}
	stale, err := a.Store.StaleWebhookMessages(ctx, now.Add(-webhookStaleAfter), repliesBatch)
	if err != nil || len(stale) == 0 {
		return err
	}
	return a.signalAll(ctx, stale, func(int64) (string, any) {
		return pipeline.SignalDeliverWebhooks, pipeline.OperatorSignal{By: "send/receive: webhook events pending since over " + webhookStaleAfter.String()}
	}, func(int64) {})
}

// pickupParallel bounds the pickup answers a worker process holds at once. An answer
// may be as large as KOERIER_DIGIPOORT_MAX_RESPONSE_MIB (64 MiB by default, at most
// 128) and costs 5 to 7 times its size while it is verified and decoded, and its
// documents stay in memory until they are stored: Config.Parallel (16) of them at once
// would be several GiB, two are at most about 0.9 GiB at the default bound. Two keep
// one call's wait on the network overlapping the other's work, which is most of what
// parallel calls gain; replies are usually kilobytes, so pickup is not slower for it in
// practice. A fixed count rather than a byte budget, because the size of an answer is
// known only once it arrives.
const pickupParallel = 2

// pickupSlots is per process, not per call: a heartbeat timeout can start a retry of
// ReceivePickup on this worker while the abandoned attempt is still fetching.
var pickupSlots = semaphore.NewWeighted(pickupParallel)

// ReceivePickup asks Digipoort for everything put ready for pickup in the last 30 days
// (rule 7), fetches what Koerier has not stored yet, links each document to the message
// it answers and keeps the rest as unknown replies (ONB, logged F).
//
// Each kenmerk is fetched and stored on its own, so that one failing kenmerk starves no
// other: one Digipoort refuses for good (its answer is over the response bound, say)
// gets an F line once and is asked again by every later run, which may succeed when
// the bound was raised; transient trouble fails the activity after every other kenmerk
// was fetched and stored, and Temporal's retry fetches only what is still missing.
func (a *Activities) ReceivePickup(ctx context.Context) (pipeline.PickupResult, error) {
	defer keepAlive(ctx)()
	now := time.Now()
	from := now.Add(-domain.ReceiveLookBack)
	fetch, listed, err := a.newPickups(ctx, from, now)
	res := pipeline.PickupResult{Listed: listed}
	if err != nil {
		return res, err
	}
	var mu sync.Mutex // guards res and done, and keeps one StoreIncoming at a time
	done := 0
	errs := a.forEach(ctx, len(fetch), func(i int) error {
		k := fetch[i]
		if err := pickupSlots.Acquire(ctx, 1); err != nil {
			return fmt.Errorf("fetch messages of kenmerk %s: %w", k, err)
		}
		// Held until the documents are stored: their content counts against the slot too.
		defer pickupSlots.Release(1)
		berichten, err := a.Digipoort.BerichtenKenmerk(ctx, k, from, now)
		if err != nil {
			return fmt.Errorf("fetch messages of kenmerk %s: %w", k, err)
		}
		docs := make([]store.IncomingDoc, 0, len(berichten))
		for _, b := range berichten {
			docs = append(docs, store.IncomingDoc{PickupKenmerk: b.Kenmerk, Berichtkenmerk: b.Berichtkenmerk, Aanleverkenmerk: b.Aanleverkenmerk,
				Berichtsoort: b.Berichtsoort, Subject: b.Belanghebbende.Nummer, FileName: b.Bestandsnaam, MimeType: b.MimeType,
				Content: b.Inhoud, Aangeleverd: b.Aangeleverd})
		}
		mu.Lock()
		defer mu.Unlock()
		in, err := a.Store.StoreIncoming(ctx, docs)
		if err != nil {
			return fmt.Errorf("store the messages of kenmerk %s: %w", k, err)
		}
		res.Fetched += len(docs)
		res.Unknown += len(in.Unknown)
		a.startUnknownRepliesOrLeave(ctx, in.Unknown)
		res.Duplicates += in.Duplicates
		for _, l := range in.Linked {
			res.Linked += len(l)
		}
		done++
		activity.RecordHeartbeat(ctx, done)
		return nil
	})
	var transient []error
	for i, e := range errs {
		if e == nil {
			continue
		}
		res.Errors++
		if !digipoort.IsFinal(e) {
			transient = append(transient, e)
			continue
		}
		// Once per kenmerk, not per run: every run asks again and would otherwise add the
		// same line each time.
		if err := a.Store.WriteLog(ctx, store.LogEntry{Step: domain.StepReceive, Level: domain.LevelError,
			Description: e.Error(),
			Information: fmt.Sprintf("the other messages ready for pickup were fetched; this kenmerk is asked for again on every send/receive "+
				"(this line is written once) and Digipoort keeps it for 30 days: if its answer is too large, raise %s (at most %d MiB) and let "+
				"the next send/receive fetch it", digipoort.EnvMaxResponseMiB, digipoort.MaxResponseMiBAllowed),
			DedupeKey: "pickup-refused/" + fetch[i]}); err != nil {
			return res, err
		}
	}
	if len(transient) > 0 {
		return res, fmt.Errorf("%d of %d kenmerken could not be picked up for now (the others are stored; a retry fetches only what is "+
			"missing): %w", len(transient), len(fetch), errors.Join(transient...))
	}
	return res, nil
}

// newPickups lists what Digipoort holds for pickup and returns the kenmerken with more
// documents listed than Koerier has stored, sorted, and how many were listed.
func (a *Activities) newPickups(ctx context.Context, from, to time.Time) ([]string, int, error) {
	refs, err := a.Digipoort.BerichtenLijst(ctx, from, to)
	if err != nil {
		return nil, 0, fmt.Errorf("list messages ready for pickup: %w", err)
	}
	listed := map[string]int{}
	var kenmerken []string
	for _, r := range refs {
		if listed[r.Kenmerk] == 0 {
			kenmerken = append(kenmerken, r.Kenmerk)
		}
		listed[r.Kenmerk]++
	}
	stored, err := a.Store.PickupCounts(ctx, kenmerken)
	if err != nil {
		return nil, len(refs), err
	}
	var fetch []string
	for _, k := range kenmerken {
		if listed[k] > stored[k] {
			fetch = append(fetch, k)
		}
	}
	slices.Sort(fetch)
	return fetch, len(refs), nil
}
