// Package bench measures gitpace as its users run it, side by side with
// kubectl and a client-go floor, on the local control plane: `make bench`.
//
// Everything is in BenchmarkSideBySide (bench_test.go). gitpace is a black
// box there: the binary built from ./cmd/gitpace, run at its default flags.
// Every contestant (kubectl, gitpace, the in-process floor) talks to the API
// server through a counting proxy of the benchmark's own (proxy_test.go), so
// that its requests are counted exactly by verb, resource and dry run,
// apart from those of the control plane's controllers and of other clients
// of a shared cluster; the API server's own apiserver_request_total is
// scraped too and printed beside them, as the count of all clients.
package bench
