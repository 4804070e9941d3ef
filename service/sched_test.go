package service

import (
	"context"
	"sync"
	"testing"
	"time"
)

// recorder notes the order jobs run in.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) note(name string) {
	r.mu.Lock()
	r.ran = append(r.ran, name)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

// waitClosed fails the test unless ch is closed within a generous deadline.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

// A job whose finish comes after its run returned (a commit waiting for the
// disk) frees its worker for another key at once, and holds its own key's
// next job until it finishes.
func TestSchedFinishLaterFreesTheWorkerNotTheKey(t *testing.T) {
	sc := newSched(1, 8)
	var rec recorder
	var b batch
	ctx := context.Background()
	var finishA1 func(bool)
	a1Ran, bRan, a2Ran := make(chan struct{}), make(chan struct{}), make(chan struct{})
	b.start(ctx, sc, "A", func(finish func(bool)) {
		rec.note("A1")
		finishA1 = finish // finished later, from the test
		close(a1Ran)
	})
	b.start(ctx, sc, "A", func(finish func(bool)) { rec.note("A2"); close(a2Ran); finish(true) })
	b.start(ctx, sc, "B", func(finish func(bool)) { rec.note("B1"); close(bRan); finish(true) })
	waitClosed(t, a1Ran, "A1's run")
	// One worker, and A1 not finished: B1 must still run.
	waitClosed(t, bRan, "B1's run while A1's finish is pending")
	select {
	case <-a2Ran:
		t.Fatal("A2 ran before A1 finished")
	default:
	}
	go finishA1(true)
	waitClosed(t, a2Ran, "A2's run after A1 finished")
	if pending := b.wait(); pending {
		t.Error("a batch of final jobs reported pending")
	}
	sc.close()
	got := rec.list()
	want := []string{"A1", "B1", "A2"}
	if len(got) != len(want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ran %v, want %v", got, want)
		}
	}
}

// A job finished without a final outcome blocks its key: the key's waiting
// jobs and those submitted later end unrun, other keys go on.
func TestSchedNotFinalBlocksTheKey(t *testing.T) {
	sc := newSched(2, 8)
	var rec recorder
	var b batch
	ctx := context.Background()
	release := make(chan struct{})
	b.start(ctx, sc, "A", func(finish func(bool)) {
		rec.note("A1")
		go func() { <-release; finish(false) }()
	})
	b.start(ctx, sc, "A", func(finish func(bool)) { rec.note("A2"); finish(true) })
	b.submit(ctx, sc, "B", func() bool { rec.note("B1"); return true })
	close(release)
	if pending := b.wait(); !pending {
		t.Error("the batch did not report the job without a final outcome")
	}
	if !sc.isBlocked("A") || sc.isBlocked("B") {
		t.Errorf("blocked: A %v, B %v; want A only", sc.isBlocked("A"), sc.isBlocked("B"))
	}
	var late batch
	late.submit(ctx, sc, "A", func() bool { rec.note("A3"); return true })
	if pending := late.wait(); !pending {
		t.Error("a job of a blocked key was not reported pending")
	}
	sc.close()
	for _, name := range rec.list() {
		if name == "A2" || name == "A3" {
			t.Errorf("%s ran after A1 ended without an outcome; ran %v", name, rec.list())
		}
	}
}

// close waits for a finish still pending after every run returned.
func TestSchedCloseWaitsForPendingFinish(t *testing.T) {
	sc := newSched(1, 4)
	var b batch
	ran := make(chan struct{})
	var finished sync.WaitGroup
	finished.Add(1)
	var mu sync.Mutex
	done := false
	b.start(context.Background(), sc, "A", func(finish func(bool)) {
		close(ran)
		go func() {
			defer finished.Done()
			<-ran
			mu.Lock()
			done = true
			mu.Unlock()
			finish(true)
		}()
	})
	waitClosed(t, ran, "the run")
	sc.close()
	mu.Lock()
	defer mu.Unlock()
	if !done {
		t.Error("close returned before the job finished")
	}
	finished.Wait()
}

// A worker sends at most one message while an earlier one's answer is
// still committing: a crash finds at most two per worker unrecorded.
func TestSchedWorkerHasAtMostOneAnswerCommitting(t *testing.T) {
	sc := newSched(1, 8)
	var b batch
	ctx := context.Background()
	finishes := make(chan func(bool), 3)
	ran := map[string]chan struct{}{"A": make(chan struct{}), "B": make(chan struct{}), "C": make(chan struct{})}
	for _, k := range []string{"A", "B", "C"} {
		b.start(ctx, sc, k, func(finish func(bool)) {
			close(ran[k])
			finishes <- finish // finished later, from the test
		})
	}
	waitClosed(t, ran["A"], "A's run")
	finishA := <-finishes
	waitClosed(t, ran["B"], "B's run while A's answer commits")
	finishB := <-finishes
	select {
	case <-ran["C"]:
		t.Fatal("C ran while A and B were both unfinished")
	default:
	}
	go finishA(true)
	waitClosed(t, ran["C"], "C's run once A finished")
	finishB(true)
	(<-finishes)(true)
	b.wait()
	sc.close()
}

// A job dropped at submit because the pass is stopping ends without a
// final outcome, so its key is blocked: a later job of the key, submitted
// with the same (ended) ctx, must not run. (finishFromJournal's jobs send
// without looking at ctx: an earlier dose dropped at submit and a later
// one let through - submit's select picks at random between a free slot
// and the ended ctx - would reach the registry out of order.)
func TestSchedJobDroppedAtStopBlocksItsKey(t *testing.T) {
	const keys = 100
	sc := newSched(1, 4*keys)
	var rec recorder
	var b batch
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for k := 0; k < keys; k++ {
		for _, n := range []string{"1", "2"} {
			name := string(rune('A'+k%26)) + string(rune('a'+k/26)) + n
			b.submit(ctx, sc, name[:2], func() bool { rec.note(name); return true })
		}
	}
	b.wait()
	sc.close()
	ran := map[string]bool{}
	for _, name := range rec.list() {
		ran[name] = true
	}
	var overtaken []string
	for name := range ran {
		if name[2] == '2' && !ran[name[:2]+"1"] {
			overtaken = append(overtaken, name[:2])
		}
	}
	if len(overtaken) > 0 {
		t.Errorf("%d keys had their second job run though the first ended unrun (e.g. %s)", len(overtaken), overtaken[0])
	}
}

// When a job's fate is reported without a final outcome, its key is
// already blocked: whoever waits on the fate (batch.wait, then the next
// file's ahead.add, which asks isBlocked) must not find it open.
func TestSchedKeyBlockedWhenNotFinalIsReported(t *testing.T) {
	sc := newSched(1, 1)
	atDone := make(chan bool, 1)
	sc.submit(context.Background(), &job{key: "A", run: func(finish func(bool)) { finish(false) },
		done: func(bool) { atDone <- sc.isBlocked("A") }})
	if !<-atDone {
		t.Error("a job ended by its run was reported unfinal before its key was blocked")
	}
	// A job dropped at submit (the pass stopping: its only slot is held).
	release := make(chan struct{})
	sc.submit(context.Background(), &job{key: "X", run: func(finish func(bool)) { go func() { <-release; finish(true) }() },
		done: func(bool) {}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sc.submit(ctx, &job{key: "B", run: func(finish func(bool)) { finish(true) },
		done: func(bool) { atDone <- sc.isBlocked("B") }})
	if !<-atDone {
		t.Error("a job dropped at submit was reported unfinal with its key open")
	}
	close(release)
	sc.close()
}
