// Command noop is the Go no-op floor for scripts/bench: a composition
// function served by function-sdk-go (function.Serve, with the SDK's default
// gRPC metrics interceptor, as real Go functions have) that answers every
// RunFunction with the request's observed composed resources as desired and
// the meta tag echoed (response.To). It costs what decoding and encoding the
// request costs in Go, and nothing else.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	function "github.com/crossplane/function-sdk-go"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/response"
)

type noop struct {
	fnv1.UnimplementedFunctionRunnerServiceServer
}

func (noop) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp := response.To(req, response.DefaultTTL)
	if rsp.Desired == nil {
		rsp.Desired = &fnv1.State{}
	}
	observed := req.GetObserved().GetResources()
	rsp.Desired.Resources = make(map[string]*fnv1.Resource, len(observed))
	for name, r := range observed {
		rsp.Desired.Resources[name] = &fnv1.Resource{Resource: r.GetResource()}
	}
	return rsp, nil
}

func main() {
	address := flag.String("address", "127.0.0.1:9446", "where to serve RunFunction (insecure)")
	metrics := flag.String("metrics-address", "127.0.0.1:0", "where the SDK serves its metrics")
	flag.Parse()
	err := function.Serve(noop{},
		function.Listen("tcp", *address),
		function.Insecure(true),
		function.MaxRecvMessageSize(64*1024*1024),
		function.WithMetricsServer(*metrics))
	if err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}
