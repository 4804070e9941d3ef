package outbound_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/sandbox"
)

// BenchmarkDeliver measures submission throughput against the in-process
// sandbox answering after 50 ms, at several concurrencies; the ideal is
// concurrency / latency messages a second.
func BenchmarkDeliver(b *testing.B) {
	const latency = 50 * time.Millisecond
	for _, conc := range []int{1, 4, 8, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			e := start(b, outbound.Codec2011, sandbox.Faults{Latency: latency}, func(ep *outbound.Endpoint) { ep.Concurrency = conc })
			msgs := make([][]byte, b.N)
			for i := range msgs {
				id := fmt.Sprintf("B%d-%d", conc, i)
				msgs[i] = vxu(id, "V"+id)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						if _, err := e.c.Deliver(context.Background(), fmt.Sprintf("B%d-%d", conc, i), msgs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			rate := float64(b.N) / b.Elapsed().Seconds()
			ideal := float64(conc) / latency.Seconds()
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(100*rate/ideal, "%ideal")
			b.ReportMetric(float64(e.sb.Stats().Connections), "conns")
		})
	}
}
