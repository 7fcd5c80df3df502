package config

import "time"

// WorkQueueName is the Storage queue of slow work; functions/work/function.json triggers on it.
const WorkQueueName = "work"

// Work holds the work queue's settings. Jobs need the token store (their input is sealed there);
// without a queue, work after a sign-in runs in the background of the instance that answered.
//
// In Azure the handler enqueues with the managed identity through the same identity-based
// connection setting the queue trigger reads (Learn "Azure Functions" identity-based
// connections: <CONNECTION>__queueServiceUri):
//
//	AzureWebJobsStorage__queueServiceUri = https://<account>.queue.core.windows.net
//
// Locally (Azurite), a connection string instead:
//
//	WORK_QUEUE_CONNECTION_STRING = DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=…;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;
type Work struct {
	// QueueServiceURI is https://<account>.queue.core.windows.net (managed identity).
	QueueServiceURI string
	// ConnectionString is a local-development-only connection string (Azurite).
	ConnectionString string
	// JobTimeout bounds one run of a job, and so how long a job whose instance died waits
	// before another instance takes it over (WORK_JOB_TIMEOUT, a Go duration; default 2m).
	JobTimeout time.Duration
}

// Configured reports whether a work queue is set.
func (w Work) Configured() bool { return w.QueueServiceURI != "" || w.ConnectionString != "" }

func (r *reader) work(c *Config) {
	c.Work.QueueServiceURI = r.httpsURL("AzureWebJobsStorage__queueServiceUri", "", true)
	c.Work.ConnectionString = r.str("WORK_QUEUE_CONNECTION_STRING")
	if v := r.str("WORK_JOB_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			r.fail("WORK_JOB_TIMEOUT", "must be a duration between 1s and 10m (the queue keeps a running message invisible for 10 minutes), such as 2m")
		} else {
			c.Work.JobTimeout = d
		}
	}
	switch {
	case c.InAzure && c.Work.ConnectionString != "":
		r.fail("WORK_QUEUE_CONNECTION_STRING", "refused when running in Azure: use AzureWebJobsStorage__queueServiceUri with the managed identity")
	case c.Work.QueueServiceURI != "" && c.Work.ConnectionString != "":
		r.fail("WORK_QUEUE_CONNECTION_STRING", "set either AzureWebJobsStorage__queueServiceUri or WORK_QUEUE_CONNECTION_STRING, not both")
	case c.Work.Configured() && !c.TokenStore.Configured():
		r.fail("AzureWebJobsStorage__queueServiceUri", "the work queue needs the token store (TOKENSTORE_TABLE_ENDPOINT), where jobs are kept sealed")
	}
}
