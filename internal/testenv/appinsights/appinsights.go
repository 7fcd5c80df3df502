// Package appinsights is an Application Insights ingestion stand-in for tests (never imported
// by production code): a real HTTPS server with the track endpoint of a component whose local
// (instrumentation-key) authentication is disabled, so every batch needs a Microsoft Entra
// token of an identity holding Monitoring Metrics Publisher on the component. It accepts only
// custom events (the one telemetry type onbehalf sends) and keeps them for assertions.
//
// Sources:
//   - Microsoft Entra authenticated ingestion (MicrosoftDocs/azure-docs
//     articles/azure-monitor/app/azure-ad-authentication.md): telemetry goes to
//     "{IngestionEndpoint}/v2.1/track" ("v2/track" does not support Microsoft Entra ID); the token
//     audience in the public cloud is https://monitor.azure.com; a missing or invalid token is
//     "401 Authorization required", a valid token of an identity without the Monitoring Metrics
//     Publisher role "403"; the connection string may carry AADAudience for other clouds.
//   - The Azure SDKs ask for the scope "https://monitor.azure.com//.default"
//     (Azure/azure-sdk-for-js monitor-opentelemetry-exporter httpSender.ts); a v1 (managed
//     identity) token then carries the resource "https://monitor.azure.com/" — unverified which
//     of the two spellings Entra writes in aud, so both are accepted, nothing else.
//   - Envelope schema (microsoft/ApplicationInsights-Go appinsights/contracts/envelope.go,
//     eventdata.go, generated from the Bond schema): {name, time (ISO 8601 UTC), iKey, tags,
//     data:{baseType, baseData}}; a custom event is name "Microsoft.ApplicationInsights.Event",
//     baseType "EventData", baseData {ver: 2, name, properties (string → string),
//     measurements (string → number)}.
//   - Transmission (ApplicationInsights-Go appinsights/transmitter.go): one envelope per line
//     ("application/x-json-stream", optionally gzip); the answer is {itemsReceived,
//     itemsAccepted, errors:[{index, statusCode, message}]} with 200 when all were accepted,
//     206 when some were refused (per-item statusCode; 408/429/500/503 may be retried), 400 when
//     none; 429/500/503 as a whole are retryable.
//   - Field limits (learn.microsoft.com azure-monitor/app/api-custom-events-metrics, "Limits":
//     property names 150 characters, values 8,192; event name 512) — unverified beyond that page.
//
// docs/fidelity.md lists each rule with its source and status.
package appinsights

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
)

// Scope is the scope the Azure SDKs ask a token for (public cloud).
const Scope = "https://monitor.azure.com//.default"

// audiences are the token audiences accepted (see the package comment).
var audiences = []string{"https://monitor.azure.com", "https://monitor.azure.com/"}

// Event is one accepted custom event.
type Event struct {
	Name         string
	Time         time.Time
	IKey         string
	Properties   map[string]string
	Measurements map[string]float64
	// Publisher is the oid of the identity whose token sent it.
	Publisher string
}

// Verifier checks an Entra token for an audience and returns its claims (entra.Server.Verify).
type Verifier func(token, audience string) (map[string]any, error)

// Server is the stand-in.
type Server struct {
	// URL is the IngestionEndpoint to put in the connection string.
	URL  string
	IKey string

	srv        *httptest.Server
	verify     Verifier
	mu         sync.Mutex
	publishers map[string]bool
	events     []Event
	batches    int
	refused    int
	fail       []int // statuses to answer, one per request, before normal service
}

// Start runs a component with instrumentation key ikey whose tokens verify checks; the
// principals (object ids) hold Monitoring Metrics Publisher on it.
func Start(ikey string, verify Verifier, publishers ...string) *Server {
	s := &Server{IKey: ikey, verify: verify, publishers: map[string]bool{}}
	for _, p := range publishers {
		s.publishers[p] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2.1/track", s.track)
	mux.HandleFunc("POST /v2/track", func(w http.ResponseWriter, r *http.Request) {
		// Local authentication is disabled on this component.
		s.count(false)
		writeResult(w, http.StatusBadRequest, 0, 0, nil, "Authentication not supported")
	})
	s.srv = testenv.SharedCA().NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// ConnectionString is the component's connection string.
func (s *Server) ConnectionString() string {
	return "InstrumentationKey=" + s.IKey + ";IngestionEndpoint=" + s.URL + "/;LiveEndpoint=" + s.URL + "/"
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Grant gives the identity with object id oid Monitoring Metrics Publisher on the component.
func (s *Server) Grant(oid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishers[oid] = true
}

// FailNext makes the next requests answer these statuses (for example 503, 503) as a whole.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

// Events returns the accepted events, in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Batches counts accepted requests; Refused counts refused ones.
func (s *Server) Batches() int { s.mu.Lock(); defer s.mu.Unlock(); return s.batches }

// Refused counts requests answered with an error as a whole.
func (s *Server) Refused() int { s.mu.Lock(); defer s.mu.Unlock(); return s.refused }

func (s *Server) count(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.batches++
	} else {
		s.refused++
	}
}

type itemError struct {
	Index      int    `json:"index"`
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

func writeResult(w http.ResponseWriter, status, received, accepted int, errs []itemError, msg string) {
	if errs == nil {
		errs = []itemError{}
	}
	if msg != "" && len(errs) == 0 {
		errs = append(errs, itemError{Index: 0, StatusCode: status, Message: msg})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"itemsReceived": received, "itemsAccepted": accepted, "errors": errs})
}

func (s *Server) track(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if len(s.fail) > 0 {
		st := s.fail[0]
		s.fail = s.fail[1:]
		s.refused++
		s.mu.Unlock()
		writeResult(w, st, 0, 0, nil, "injected fault")
		return
	}
	s.mu.Unlock()

	// Authentication first: the component accepts Entra tokens only.
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		s.count(false)
		writeResult(w, http.StatusUnauthorized, 0, 0, nil, "Authorization required")
		return
	}
	var claims map[string]any
	var err error
	for _, aud := range audiences {
		if claims, err = s.verify(tok, aud); err == nil {
			break
		}
	}
	if err != nil {
		s.count(false)
		writeResult(w, http.StatusUnauthorized, 0, 0, nil, "Authorization required: invalid token")
		return
	}
	oid, _ := claims["oid"].(string)
	s.mu.Lock()
	granted := s.publishers[oid]
	s.mu.Unlock()
	if !granted {
		s.count(false)
		writeResult(w, http.StatusForbidden, 0, 0, nil, "provided credentials do not grant the access to ingest the telemetry into the component")
		return
	}

	body, err := readBody(r)
	if err != nil {
		s.count(false)
		writeResult(w, http.StatusBadRequest, 0, 0, nil, err.Error())
		return
	}
	lines := splitItems(body)
	var errs []itemError
	var good []Event
	for i, l := range lines {
		ev, err := s.parse(l)
		if err != nil {
			errs = append(errs, itemError{Index: i, StatusCode: http.StatusBadRequest, Message: err.Error()})
			continue
		}
		ev.Publisher = oid
		good = append(good, ev)
	}
	s.mu.Lock()
	s.events = append(s.events, good...)
	if len(good) > 0 {
		s.batches++
	} else {
		s.refused++
	}
	s.mu.Unlock()
	switch {
	case len(lines) == 0:
		writeResult(w, http.StatusBadRequest, 0, 0, nil, "no telemetry items")
	case len(errs) == 0:
		writeResult(w, http.StatusOK, len(lines), len(good), nil, "")
	case len(good) == 0:
		writeResult(w, http.StatusBadRequest, len(lines), 0, errs, "")
	default:
		writeResult(w, http.StatusPartialContent, len(lines), len(good), errs, "")
	}
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, 4<<20)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("body is not gzip: %w", err)
		}
		rd = gz
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-json-stream") && !strings.HasPrefix(ct, "application/json") {
		return nil, fmt.Errorf("unsupported content type %q", ct)
	}
	return io.ReadAll(rd)
}

// splitItems accepts one envelope per line, or a JSON array of envelopes.
func splitItems(body []byte) [][]byte {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(body, &arr) != nil {
			return [][]byte{body}
		}
		out := make([][]byte, len(arr))
		for i, a := range arr {
			out[i] = a
		}
		return out
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			out = append(out, append([]byte(nil), l...))
		}
	}
	return out
}

type envelope struct {
	Name string            `json:"name"`
	Time string            `json:"time"`
	IKey string            `json:"iKey"`
	Tags map[string]string `json:"tags"`
	Data *struct {
		BaseType string `json:"baseType"`
		BaseData *struct {
			Ver          int                `json:"ver"`
			Name         string             `json:"name"`
			Properties   map[string]string  `json:"properties"`
			Measurements map[string]float64 `json:"measurements"`
		} `json:"baseData"`
	} `json:"data"`
}

func (s *Server) parse(l []byte) (Event, error) {
	var e envelope
	dec := json.NewDecoder(bytes.NewReader(l))
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("not a telemetry envelope: %w", err)
	}
	switch {
	case e.Name != "Microsoft.ApplicationInsights.Event":
		return Event{}, fmt.Errorf("envelope name %q is not a custom event", e.Name)
	case !strings.EqualFold(e.IKey, s.IKey):
		return Event{}, fmt.Errorf("invalid instrumentation key")
	case e.Data == nil || e.Data.BaseType != "EventData" || e.Data.BaseData == nil:
		return Event{}, fmt.Errorf("data.baseType must be EventData with baseData")
	case e.Data.BaseData.Ver != 2:
		return Event{}, fmt.Errorf("baseData.ver must be 2")
	case e.Data.BaseData.Name == "" || len(e.Data.BaseData.Name) > 512:
		return Event{}, fmt.Errorf("event name empty or longer than 512")
	}
	at, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil || !strings.HasSuffix(e.Time, "Z") {
		return Event{}, fmt.Errorf("time %q is not ISO 8601 UTC", e.Time)
	}
	for k, v := range e.Data.BaseData.Properties {
		if k == "" || len(k) > 150 || len(v) > 8192 {
			return Event{}, fmt.Errorf("property %q too long", k)
		}
	}
	return Event{Name: e.Data.BaseData.Name, Time: at, IKey: e.IKey, Properties: e.Data.BaseData.Properties, Measurements: e.Data.BaseData.Measurements}, nil
}
