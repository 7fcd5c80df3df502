package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/sso"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
	"github.com/onbehalf/onbehalf/internal/work"
)

// Job kinds: JobResume answers a request that waited for a sign-in or a link; JobTurn answers
// a slow command (bot.Command.Slow) outside the channel's request.
const (
	JobResume   = "resume"
	JobTurn     = "turn"
	JobAnnounce = "announce"
)

// openWork connects the work queue when it is configured and the token store is there to
// hold the jobs. Creating the queue is best effort: infra/ creates it in Azure.
func (a *App) openWork(ctx context.Context, cfg *config.Config, opts Options) error {
	if !cfg.Work.Configured() || a.Store == nil {
		return nil
	}
	co := &azqueue.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: opts.HTTPClient}}
	var q *azqueue.QueueClient
	if cfg.Work.ConnectionString != "" {
		svc, err := azqueue.NewServiceClientFromConnectionString(cfg.Work.ConnectionString, co)
		if err != nil {
			return fmt.Errorf("work queue: %w", err)
		}
		q = svc.NewQueueClient(config.WorkQueueName)
	} else {
		mi, err := managedIdentity(cfg, opts)
		if err != nil {
			return fmt.Errorf("work queue: %w", err)
		}
		if q, err = azqueue.NewQueueClient(strings.TrimRight(cfg.Work.QueueServiceURI, "/")+"/"+config.WorkQueueName, mi, co); err != nil {
			return fmt.Errorf("work queue: %w", err)
		}
	}
	if _, err := q.Create(ctx, nil); err != nil && !strings.Contains(err.Error(), "QueueAlreadyExists") {
		a.log.Warn("creating the work queue failed; assuming it exists", slog.String("error", err.Error()))
	}
	a.Jobs = &work.Queue{Store: a.Store, Messages: q, Notes: a.Store}
	var id [6]byte
	_, _ = rand.Read(id[:])
	a.Worker = &work.Worker{Store: a.Store, Notes: a.Store, Sender: a.Connector, Log: opts.Log, Instance: hex.EncodeToString(id[:]), Now: opts.Now, Lease: cfg.Work.JobTimeout}
	answer := func(ctx context.Context, j work.Job) error {
		var act botframework.Activity
		if err := json.Unmarshal(j.Data, &act); err != nil {
			return fmt.Errorf("%s job: %w", j.Kind, err)
		}
		_, _, err := a.Bot.OnActivity(bot.InJob(ctx), &act)
		return err
	}
	a.Worker.Handle(JobResume, answer)
	a.Worker.Handle(JobTurn, answer)
	if a.SSO != nil {
		a.SSO.Queue = resumeQueue{a.Jobs}
	}
	a.Bot.Defer = a.deferTurn
	if a.OAuth != nil {
		a.Worker.Handle(JobAnnounce, func(ctx context.Context, j work.Job) error {
			var d announceData
			if err := json.Unmarshal(j.Data, &d); err != nil {
				return fmt.Errorf("announce job: %w", err)
			}
			return a.OAuth.Announce(bot.InJob(ctx), a.Connector, j.User, d.Connector, d.Ref, j.Ref)
		})
		a.OAuth.Later = a.laterAnnounce
	}
	return nil
}

// mountWork serves the non-HTTP functions: /work (queue trigger) and /purge (timer).
func (a *App) mountWork(mux *http.ServeMux, now func() time.Time) {
	if a.Worker != nil {
		mux.Handle("/work", a.Worker)
	}
	if a.Store != nil {
		mux.Handle("/purge", &work.Purge{Store: a.Store, Log: a.log, After: a.WarnLapsing, Now: now})
	}
}

// resumeQueue queues parked activities as resume jobs keyed by the activity id.
type resumeQueue struct{ q *work.Queue }

func (r resumeQueue) EnqueueResume(ctx context.Context, u tokenstore.UserKey, act *botframework.Activity) error {
	if act.ID == "" {
		return errors.New("resume: the activity has no id to key the job")
	}
	b, err := json.Marshal(act)
	if err != nil {
		return err
	}
	return r.q.Enqueue(ctx, act.ID+"|"+JobResume, work.Job{Kind: JobResume, User: u, Ref: act.Reference(), Data: b})
}

// announceData is an announce job's own input.
type announceData struct {
	Connector string          `json:"c"`
	Ref       json.RawMessage `json:"r,omitempty"`
}

// laterAnnounce queues the announcement of connector's new link for u, keyed by the
// confirming activity.
func (a *App) laterAnnounce(ctx context.Context, t *bot.Turn, u tokenstore.UserKey, connector string, ref json.RawMessage) error {
	b, err := json.Marshal(announceData{Connector: connector, Ref: ref})
	if err != nil {
		return err
	}
	return a.Jobs.Enqueue(ctx, t.Activity.ID+"|"+JobAnnounce+"|"+connector, work.Job{Kind: JobAnnounce, User: u, Ref: t.Reference(), Data: b})
}

// deferTurn queues a slow command's turn, keyed by its activity id, and shows the typing
// indicator at once; the worker shows it again when it starts.
func (a *App) deferTurn(ctx context.Context, t *bot.Turn) error {
	c, err := sso.CallerOf(t.Activity, a.Config.TenantID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(t.Activity)
	if err != nil {
		return err
	}
	if err := a.Jobs.Enqueue(ctx, t.Activity.ID+"|"+JobTurn, work.Job{Kind: JobTurn, User: c.User, Ref: t.Reference(), Data: b}); err != nil {
		return err
	}
	if err := a.Connector.Typing(ctx, t.Reference()); err != nil {
		a.log.Debug("typing indicator failed", slog.String("error", err.Error()))
	}
	return nil
}

// resumeActivity answers an activity that waited (for an account link): through the work
// queue when there is one and the activity names its Entra user, here otherwise.
func (a *App) resumeActivity(ctx context.Context, act *botframework.Activity) error {
	if a.Jobs != nil {
		if c, err := sso.CallerOf(act, a.Config.TenantID); err == nil {
			if err := (resumeQueue{a.Jobs}).EnqueueResume(ctx, c.User, act); err == nil {
				return nil
			}
		}
	}
	_, _, err := a.Bot.OnActivity(ctx, act)
	return err
}
