package funchost

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// Binding is one entry of a function.json "bindings" array.
type Binding struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Direction  string `json:"direction"`
	QueueName  string `json:"queueName"`
	Connection string `json:"connection"`
	Schedule   string `json:"schedule"`
}

// Function is one functions/<name>/function.json.
type Function struct {
	Name     string
	Bindings []Binding `json:"bindings"`
}

// Trigger returns the function's single trigger binding.
func (f Function) Trigger() (Binding, error) {
	var out []Binding
	for _, b := range f.Bindings {
		if strings.HasSuffix(b.Type, "Trigger") {
			out = append(out, b)
		}
	}
	if len(out) != 1 {
		return Binding{}, fmt.Errorf("funchost: %s has %d trigger bindings, want 1", f.Name, len(out))
	}
	return out[0], nil
}

// LoadFunction reads <functionsDir>/<name>/function.json.
func LoadFunction(functionsDir, name string) (Function, error) {
	b, err := os.ReadFile(filepath.Join(functionsDir, name, "function.json"))
	if err != nil {
		return Function{}, fmt.Errorf("funchost: %w", err)
	}
	f := Function{Name: name}
	if err := json.Unmarshal(b, &f); err != nil {
		return Function{}, fmt.Errorf("funchost: %s/function.json: %w", name, err)
	}
	return f, nil
}

// QueueSettings are host.json's extensions.queues (Learn "host.json reference for Azure
// Functions 2.x and later", queues; QueuesOptions).
type QueueSettings struct {
	BatchSize          int    `json:"batchSize"`
	NewBatchThreshold  int    `json:"newBatchThreshold"`
	MaxPollingInterval string `json:"maxPollingInterval"`
	VisibilityTimeout  string `json:"visibilityTimeout"`
	MaxDequeueCount    int    `json:"maxDequeueCount"`
	MessageEncoding    string `json:"messageEncoding"`
}

// LoadQueueSettings reads extensions.queues from host.json.
func LoadQueueSettings(hostJSON string) (QueueSettings, error) {
	b, err := os.ReadFile(hostJSON)
	if err != nil {
		return QueueSettings{}, fmt.Errorf("funchost: %w", err)
	}
	var h struct {
		Extensions struct {
			Queues QueueSettings `json:"queues"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return QueueSettings{}, fmt.Errorf("funchost: host.json: %w", err)
	}
	return h.Extensions.Queues, nil
}

// parseTimeSpan reads an hh:mm:ss TimeSpan as host.json writes them.
func parseTimeSpan(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var h, m, sec int
	if _, err := fmt.Sscanf(s, "%d:%d:%d", &h, &m, &sec); err != nil {
		return 0, fmt.Errorf("funchost: TimeSpan %q: %w", s, err)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}

// QueueFunctionFrom builds the queue-triggered function name of functionsDir with host.json's
// queue settings, on the queue service svc.
func QueueFunctionFrom(svc *azqueue.ServiceClient, hostJSON, functionsDir, name string) (QueueFunction, error) {
	f, err := LoadFunction(functionsDir, name)
	if err != nil {
		return QueueFunction{}, err
	}
	tr, err := f.Trigger()
	if err != nil {
		return QueueFunction{}, err
	}
	if tr.Type != "queueTrigger" || tr.QueueName == "" {
		return QueueFunction{}, fmt.Errorf("funchost: %s is not queue-triggered", name)
	}
	qs, err := LoadQueueSettings(hostJSON)
	if err != nil {
		return QueueFunction{}, err
	}
	vis, err := parseTimeSpan(qs.VisibilityTimeout)
	if err != nil {
		return QueueFunction{}, err
	}
	if qs.MessageEncoding != "" && qs.MessageEncoding != "base64" && qs.MessageEncoding != "none" {
		return QueueFunction{}, fmt.Errorf("funchost: messageEncoding %q is neither base64 nor none", qs.MessageEncoding)
	}
	return QueueFunction{
		Name: name, Binding: tr.Name,
		Queue: svc.NewQueueClient(tr.QueueName), Poison: svc.NewQueueClient(tr.QueueName + "-poison"),
		BatchSize: qs.BatchSize, VisibilityTimeout: vis, MaxDequeueCount: qs.MaxDequeueCount,
		RawMessages: qs.MessageEncoding == "none",
	}, nil
}
