package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// AcquireLock takes the send/receive lock for 30 minutes (rule 6). A lock held by
// another run is a final LockHeld error that names the holder and when it is released.
func (a *Activities) AcquireLock(ctx context.Context, holder string) (store.Lock, error) {
	l, err := a.Store.AcquireLock(ctx, store.LockSendReceive, holder, domain.LockDuration)
	return l, final(err)
}

// RenewLock extends the lock of a long run by another 30 minutes from now.
func (a *Activities) RenewLock(ctx context.Context, holder string) (store.Lock, error) {
	return a.AcquireLock(ctx, holder)
}

// ReleaseLock frees the lock if holder has it; releasing twice is harmless.
func (a *Activities) ReleaseLock(ctx context.Context, holder string) (bool, error) {
	ok, err := a.Store.ReleaseLock(ctx, store.LockSendReceive, holder)
	return ok, final(err)
}

// DispatchRequest asks for one page of due messages to be told to send.
type DispatchRequest struct {
	After int64
	Limit int
	By    string
}

// DispatchResult lists the messages told to send.
type DispatchResult struct {
	Numbers []int64
	Next    int64
	More    bool
}

// DispatchSends tells the workflows of one page of due messages to deliver, starting
// a workflow for a due message that has none (the process died between queueing and
// starting it, or it was terminated). Telling a workflow twice is harmless: a
// delivered attempt is not delivered again.
func (a *Activities) DispatchSends(ctx context.Context, req DispatchRequest) (DispatchResult, error) {
	defer keepAlive(ctx)()
	due, err := a.Store.DueMessages(ctx, req.After, req.Limit)
	if err != nil {
		return DispatchResult{}, err
	}
	res := DispatchResult{Next: req.After, More: len(due) == req.Limit}
	if len(due) == 0 {
		return res, nil
	}
	numbers := make([]int64, len(due))
	for i, d := range due {
		numbers[i] = d.Number
	}
	if err := a.signalAll(ctx, numbers, func(n int64) (string, any) {
		return pipeline.SignalSend, pipeline.SendSignal{By: req.By}
	}, nil); err != nil {
		return DispatchResult{}, err
	}
	res.Numbers, res.Next = numbers, numbers[len(numbers)-1]
	return res, nil
}

// signalAll signals (and where needed starts) the workflows of the messages, a bounded
// number at a time.
func (a *Activities) signalAll(ctx context.Context, numbers []int64, signal func(n int64) (string, any), ok func(n int64)) error {
	briefs, err := a.Store.Briefs(ctx, numbers)
	if err != nil {
		return err
	}
	errs := forEach(ctx, len(numbers), a.parallel(), func(i int) error {
		n := numbers[i]
		b := briefs[n]
		name, arg := signal(n)
		opts := DeclarationStartOptions(a.Config.TaskQueue, n, pipeline.Summary(b.Type, b.Subject, b.Period, b.Version, b.Environment),
			temporal.NewSearchAttributes(pipeline.DeclarationAttributes(b.Environment, b.Type, b.Declaration, b.Version, b.Status, b.Kenmerk)...))
		_, err := a.Temporal.SignalWithStartWorkflow(ctx, opts.ID, name, arg, opts, pipeline.DeclarationWorkflowType,
			pipeline.DeclarationInput{Number: n, NoReplyTimeout: a.Config.NoReplyTimeout})
		if err != nil {
			return fmt.Errorf("signal %s to message %d: %w", name, n, err)
		}
		if ok != nil {
			ok(n)
		}
		return nil
	})
	return errors.Join(errs...)
}

// AwaitRequest waits for dispatched messages to be delivered or refused.
type AwaitRequest struct {
	Numbers []int64
	Since   time.Time
	Timeout time.Duration
}

// AwaitSendOutcomes polls Postgres until every dispatched message has an outcome or
// the timeout passes; it heartbeats while it waits. What is still pending is returned,
// not an error: those messages stay due for the next run.
func (a *Activities) AwaitSendOutcomes(ctx context.Context, req AwaitRequest) (store.SendOutcome, error) {
	deadline := time.Now().Add(req.Timeout)
	for {
		out, err := a.Store.SendOutcomes(ctx, req.Numbers, req.Since)
		if err != nil {
			return store.SendOutcome{}, err
		}
		if len(out.Pending) == 0 || time.Now().After(deadline) {
			return out, nil
		}
		activity.RecordHeartbeat(ctx, len(out.Pending))
		select {
		case <-ctx.Done():
			return store.SendOutcome{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ReceiveRequest asks for the statuses of one page of deliveries in flight.
type ReceiveRequest struct {
	After int64
	Limit int
}

// ReceiveResult counts what one page of receiving found.
type ReceiveResult struct {
	Next       int64
	More       bool
	Deliveries int
	Replies    int
	Duplicates int
	Unknown    int
	Errors     int
}

// ReceiveStatuses fetches every status of one page of deliveries in flight, stores
// them (each once; the highest wins, decided in SQL), keeps statuses that name a
// kenmerk Koerier never delivered as unknown replies, and signals each message's
// workflow once with its new replies. A status request Digipoort refuses for good is
// logged (F) and the page goes on; transient trouble fails the page after storing
// what did arrive, for Temporal to retry.
func (a *Activities) ReceiveStatuses(ctx context.Context, req ReceiveRequest) (ReceiveResult, error) {
	defer keepAlive(ctx)()
	inflight, err := a.Store.InFlightDeliveries(ctx, req.After, req.Limit)
	if err != nil {
		return ReceiveResult{}, err
	}
	res := ReceiveResult{Next: req.After, More: len(inflight) == req.Limit, Deliveries: len(inflight)}
	if len(inflight) == 0 {
		return res, nil
	}
	res.Next = inflight[len(inflight)-1].Number
	results := make([][]digipoort.Status, len(inflight))
	errs := forEach(ctx, len(inflight), a.parallel(), func(i int) error {
		d := inflight[i]
		st, err := a.Digipoort.Statuses(ctx, d.Kenmerk, d.StartedAt.Add(-time.Hour), time.Time{})
		// A 210 comes with the statuses themselves: they carry the failure (and its
		// advice) to the message like any other final status.
		results[i] = st
		var de *digipoort.Error
		if err != nil && !(errors.As(err, &de) && de.Statuscode == "210" && len(st) > 0) {
			return fmt.Errorf("statuses of message %d (kenmerk %s): %w", d.Number, d.Kenmerk, err)
		}
		return nil
	})
	var replies []store.Reply
	var strays []store.IncomingDoc
	for i, d := range inflight {
		for _, s := range results[i] {
			if s.Kenmerk != d.Kenmerk {
				strays = append(strays, store.IncomingDoc{PickupKenmerk: s.Kenmerk, Berichtkenmerk: "status/" + s.Code + "/" + s.Time.UTC().Format(time.RFC3339Nano),
					Subject: s.Belanghebbende.Nummer, Note: fmt.Sprintf("status %s (%s) for kenmerk %s, returned when asking for kenmerk %s", s.Code, s.Description, s.Kenmerk, d.Kenmerk)})
				continue
			}
			r := store.ReplyFromCode(s.Kenmerk, s.Code, s.Time)
			if s.Description != "" {
				r.Description = s.Description
			}
			r.ErrorCode, r.ErrorDescription, r.Details = s.ErrorCode, s.ErrorDescription, s.Details
			replies = append(replies, r)
		}
	}
	applied, err := a.Store.ApplyReplies(ctx, replies)
	if err != nil {
		return ReceiveResult{}, err
	}
	res.Replies, res.Duplicates = len(applied.New), applied.Duplicates
	for _, r := range applied.New {
		info := domain.InterpretCode(r.Code)
		if info.Kind != domain.KindUnknown {
			continue
		}
		n := r.MessageNumber
		if err := a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: store.StepReceive, Level: store.LevelError,
			Description: fmt.Sprintf("Digipoort status %s (%q) for message %d (kenmerk %s) is a code Koerier does not know; the message needs an operator", r.Code, r.Description, n, r.Kenmerk),
			Information: info.Advice, DedupeKey: fmt.Sprintf("unknown-code/%d", r.EventID)}); err != nil {
			return ReceiveResult{}, err
		}
	}
	for _, u := range applied.Unlinked {
		strays = append(strays, store.IncomingDoc{PickupKenmerk: u.Kenmerk, Berichtkenmerk: "status/" + u.Code + "/" + u.OccurredAt.UTC().Format(time.RFC3339Nano),
			Note: fmt.Sprintf("status %s for kenmerk %s that no delivery of Koerier has", u.Code, u.Kenmerk)})
	}
	if len(strays) > 0 {
		in, err := a.Store.StoreIncoming(ctx, strays)
		if err != nil {
			return ReceiveResult{}, err
		}
		res.Unknown = len(in.Unknown)
	}
	numbers := make([]int64, len(inflight))
	for i, d := range inflight {
		numbers[i] = d.Number
	}
	if err := a.signalReplies(ctx, numbers); err != nil {
		return ReceiveResult{}, err
	}
	var transient []error
	for i, e := range errs {
		if e == nil {
			continue
		}
		res.Errors++
		if digipoort.IsFinal(e) {
			n := inflight[i].Number
			if lerr := a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: store.StepReceive, Level: store.LevelError,
				Description: e.Error(), Information: "nothing was stored from this answer; the next send/receive asks again — if this keeps happening, look the kenmerk up with `starter digipoort status`",
				DedupeKey: fmt.Sprintf("status-refused/%d/%s", n, time.Now().UTC().Format("2006-01-02T15"))}); lerr != nil {
				return ReceiveResult{}, lerr
			}
			continue
		}
		transient = append(transient, e)
	}
	if len(transient) > 0 {
		return res, fmt.Errorf("%d of %d status requests failed for now (the rest is stored): %w", len(transient), len(inflight), errors.Join(transient...))
	}
	return res, nil
}

// signalReplies tells workflows about stored replies they have not heard of, one
// signal per message, and marks them told. numbers nil means every message.
func (a *Activities) signalReplies(ctx context.Context, numbers []int64) error {
	for {
		pending, err := a.Store.UnsignaledReplies(ctx, numbers, 5000)
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
			sig.Replies = append(sig.Replies, replyView(p.StoredReply))
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
		if len(pending) < 5000 {
			return nil
		}
	}
}

// SignalPendingReplies is the sweep at the end of a run: replies stored by a run that
// died before it could tell their workflows are told now.
func (a *Activities) SignalPendingReplies(ctx context.Context) error {
	defer keepAlive(ctx)()
	return a.signalReplies(ctx, nil)
}

// PickupResult counts what a pickup round found.
type PickupResult struct {
	Listed     int
	Fetched    int
	Linked     int
	Unknown    int
	Duplicates int
	Errors     int
}

// ReceivePickup asks Digipoort for everything put ready for pickup in the last 30 days
// (rule 7), fetches what Koerier has not stored yet, links each document to the message
// it answers and keeps the rest as unknown replies (ONB, logged F).
func (a *Activities) ReceivePickup(ctx context.Context) (PickupResult, error) {
	defer keepAlive(ctx)()
	now := time.Now()
	from := now.Add(-domain.ReceiveLookBack)
	refs, err := a.Digipoort.BerichtenLijst(ctx, from, now)
	if err != nil {
		return PickupResult{}, fmt.Errorf("list messages ready for pickup: %w", err)
	}
	res := PickupResult{Listed: len(refs)}
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
		return PickupResult{}, err
	}
	var fetch []string
	for _, k := range kenmerken {
		if listed[k] > stored[k] {
			fetch = append(fetch, k)
		}
	}
	sort.Strings(fetch)
	const chunk = 100
	for start := 0; start < len(fetch); start += chunk {
		part := fetch[start:min(start+chunk, len(fetch))]
		docs := make([][]store.IncomingDoc, len(part))
		errs := forEach(ctx, len(part), a.parallel(), func(i int) error {
			berichten, err := a.Digipoort.BerichtenKenmerk(ctx, part[i], from, now)
			if err != nil {
				return fmt.Errorf("fetch messages of kenmerk %s: %w", part[i], err)
			}
			for _, b := range berichten {
				docs[i] = append(docs[i], store.IncomingDoc{PickupKenmerk: b.Kenmerk, Berichtkenmerk: b.Berichtkenmerk, Aanleverkenmerk: b.Aanleverkenmerk,
					Berichtsoort: b.Berichtsoort, Subject: b.Belanghebbende.Nummer, FileName: b.Bestandsnaam, MimeType: b.MimeType, Content: b.Inhoud, Aangeleverd: b.Aangeleverd})
			}
			return nil
		})
		var all []store.IncomingDoc
		for _, d := range docs {
			all = append(all, d...)
		}
		in, err := a.Store.StoreIncoming(ctx, all)
		if err != nil {
			return res, err
		}
		res.Fetched += len(all)
		res.Unknown += len(in.Unknown)
		res.Duplicates += in.Duplicates
		for _, l := range in.Linked {
			res.Linked += len(l)
		}
		if err := errors.Join(errs...); err != nil {
			res.Errors++
			return res, err
		}
		activity.RecordHeartbeat(ctx, start+len(part))
	}
	return res, nil
}

// forEach runs fn for 0..n-1 with at most parallel at once and returns each error.
func forEach(ctx context.Context, n, parallel int, fn func(i int) error) []error {
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}(i)
	}
	wg.Wait()
	return errs
}
