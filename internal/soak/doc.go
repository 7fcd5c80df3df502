// Package soak holds the soak test (soak_test.go): two or three handler processes sharing one
// Azurite, a few hundred simulated Teams users signing in and asking, while a fault schedule
// derived from a seed throttles, fails, stops and kills what they depend on. It ends with a
// summary of checks (nobody answered with another user's data, no refresh token lost, no
// parked request forgotten, nobody left in silence, no goroutine or memory growth, no secret
// in a log or a reply). `make soak` runs it for SOAK_DURATION; `go test` runs a short version.
package soak
