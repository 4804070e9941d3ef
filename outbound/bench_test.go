package outbound_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/sandbox"
)

// deliverCases are the registry latencies and concurrencies both
// benchmarks below run: 50 ms at 1 to 16 in flight (the ideal is
// concurrency / latency messages a second), and a registry that answers at
// once with 16 in flight (what the sender's own cost allows).
var deliverCases = []struct {
	latency time.Duration
	conc    int
}{{50 * time.Millisecond, 1}, {50 * time.Millisecond, 4}, {50 * time.Millisecond, 8}, {50 * time.Millisecond, 16}, {0, 16}}

// BenchmarkDeliver measures submission throughput of outbound's client
// against the in-process sandbox; compare with BenchmarkPlainClient.
func BenchmarkDeliver(b *testing.B) {
	for _, dc := range deliverCases {
		b.Run(fmt.Sprintf("latency=%v/concurrency=%d", dc.latency, dc.conc), func(b *testing.B) {
			e := start(b, outbound.Codec2011, sandbox.Faults{Latency: dc.latency}, func(ep *outbound.Endpoint) { ep.Concurrency = dc.conc })
			msgs := make([][]byte, b.N)
			for i := range msgs {
				id := fmt.Sprintf("B%d-%d", dc.conc, i)
				msgs[i] = vxu(id, "V"+id)
			}
			b.ResetTimer()
			parallel(b, dc.conc, func(i int) error {
				_, err := e.c.Deliver(context.Background(), fmt.Sprintf("B%d-%d", dc.conc, i), msgs[i])
				return err
			})
			b.StopTimer()
			report(b, dc.latency, dc.conc, e.sb)
		})
	}
}

// BenchmarkPlainClient is the baseline for BenchmarkDeliver and `izdrop
// bench`: a plain keep-alive net/http client posting the same SOAP
// requests to the same sandbox, with no retries, breaker, journal or
// parsing of the answer beyond reading it.
func BenchmarkPlainClient(b *testing.B) {
	for _, dc := range deliverCases {
		b.Run(fmt.Sprintf("latency=%v/concurrency=%d", dc.latency, dc.conc), func(b *testing.B) {
			e := start(b, outbound.Codec2011, sandbox.Faults{Latency: dc.latency}, nil)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				id := fmt.Sprintf("P%d-%d", dc.conc, i)
				bodies[i] = outbound.Codec2011.SubmitRequest("sandbox", "sandbox", "sandbox", string(vxu(id, "V"+id)))
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: dc.conc, MaxConnsPerHost: dc.conc}}
			defer client.CloseIdleConnections()
			url := e.sb.URL2011()
			b.ResetTimer()
			parallel(b, dc.conc, func(i int) error {
				resp, err := client.Post(url, `application/soap+xml; charset=utf-8; action="urn:cdc:iisb:2011:submitSingleMessage"`, bytes.NewReader(bodies[i]))
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("HTTP %d", resp.StatusCode)
				}
				return err
			})
			b.StopTimer()
			report(b, dc.latency, dc.conc, e.sb)
		})
	}
}

// parallel runs call for 0..b.N-1 on conc goroutines.
func parallel(b *testing.B, conc int, call func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := call(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func report(b *testing.B, latency time.Duration, conc int, sb *sandbox.Server) {
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "msgs/s")
	if latency > 0 {
		b.ReportMetric(100*rate/(float64(conc)/latency.Seconds()), "%ideal")
	}
	b.ReportMetric(float64(sb.Stats().Connections), "conns")
}
