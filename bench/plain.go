package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/sandbox"
)

// maxPlainRows bounds the exports whose messages are kept in memory for the
// plain client's baseline.
const maxPlainRows = 100_000

// plainRate is the baseline izdrop's sending is compared with: a plain
// keep-alive net/http client, conc requests in flight on conc connections,
// posting the same messages to a sandbox of its own with the same faults -
// no journal, no per-patient order, no retries but an immediate one on a
// 503, no parsing of the answer beyond reading it. Its rate is taken as
// the pipeline's is: messages processed over the window from the first to
// the last, plus one latency.
func plainRate(ctx context.Context, opt Options, msgs [][]byte, conc int) (float64, error) {
	var mu sync.Mutex
	var sent span
	var processed int64
	sb, err := startSandbox(opt, func(sandbox.Received) {
		mu.Lock()
		defer mu.Unlock()
		sent.note()
		processed++
	})
	if err != nil {
		return 0, err
	}
	defer sb.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := sb.URL2011()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(msgs) {
					return
				}
				body := outbound.Codec2011.SubmitRequest("sandbox", password, "sandbox", string(msgs[i]))
				if err := post(ctx, client, url, body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("plain client: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	return sent.rate(processed, opt.Latency), nil
}

// post posts one envelope, once more at once on a 503 (up to 20 times).
func post(ctx context.Context, client *http.Client, url string, body []byte) error {
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="urn:cdc:iisb:2011:submitSingleMessage"`)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			return err
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && try < 20:
			continue
		default:
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
	}
}
