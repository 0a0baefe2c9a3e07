// Go twins of the scenarios of shared/BENCHMARKS.md, with the standard library's context, so
// that Go's anchors can be re-measured on the same machine as the Rust benchmarks
// (scripts/bench-go.sh runs them). Per-element scenarios report a custom "ns/child" or
// "ns/level" metric; latency and memory scenarios report their own units.
package contextbench

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"
)

const (
	fanOut = 10_000
	chain  = 10_000
	deep   = 1_000_000
	live   = 1_000_000
)

// S1: ctx.Err() on a live child that has a deadline.
func BenchmarkS1(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ctx.Err() != nil {
			b.Fatal("done")
		}
	}
}

// S1p: S1 on two goroutines at once; ns/op is per goroutine.
func BenchmarkS1p(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	onTwo(b, func() {
		if ctx.Err() != nil {
			panic("done")
		}
	})
}

// onTwo runs op b.N times on each of two goroutines at once: ns/op is per goroutine.
func onTwo(b *testing.B, op func()) {
	var start, end sync.WaitGroup
	start.Add(1)
	end.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			start.Wait()
			for i := 0; i < b.N; i++ {
				op()
			}
			end.Done()
		}()
	}
	b.ResetTimer()
	start.Done()
	end.Wait()
}

func s2(parent context.Context) {
	_, cancel := context.WithCancel(parent)
	cancel()
}

// S2: a child WithCancel, cancelled, under a live cancellable parent.
func BenchmarkS2(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s2(parent)
	}
}

// S2p: S2 on two goroutines sharing the parent; ns/op is per goroutine.
func BenchmarkS2p(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	onTwo(b, func() { s2(parent) })
}

// S3: a child WithTimeout(1h), cancelled.
func BenchmarkS3(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, c := context.WithTimeout(parent, time.Hour)
		c()
	}
}

// S4: fan-out of fanOut children, timed phase "create" or "cancel".
func s4(b *testing.B, timeCreate bool) {
	var elapsed time.Duration
	cancels := make([]context.CancelFunc, 0, fanOut)
	for i := 0; i < b.N; i++ {
		parent, cancel := context.WithCancel(context.Background())
		start := time.Now()
		for j := 0; j < fanOut; j++ {
			_, c := context.WithCancel(parent)
			cancels = append(cancels, c)
		}
		created := time.Since(start)
		start = time.Now()
		cancel()
		cancelled := time.Since(start)
		if timeCreate {
			elapsed += created
		} else {
			elapsed += cancelled
		}
		cancels = cancels[:0]
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/fanOut, "ns/child")
}

func BenchmarkS4Create(b *testing.B) { s4(b, true) }
func BenchmarkS4Cancel(b *testing.B) { s4(b, false) }

// S4w: one goroutine blocked on Done() per child; cancel the parent until all have resumed.
func BenchmarkS4w(b *testing.B) {
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		parent, cancel := context.WithCancel(context.Background())
		var ready, woken sync.WaitGroup
		ready.Add(fanOut)
		woken.Add(fanOut)
		cancels := make([]context.CancelFunc, 0, fanOut)
		for j := 0; j < fanOut; j++ {
			ctx, c := context.WithCancel(parent)
			cancels = append(cancels, c)
			go func() {
				done := ctx.Done()
				ready.Done()
				<-done
				woken.Done()
			}()
		}
		ready.Wait()
		start := time.Now()
		cancel()
		woken.Wait()
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/fanOut, "ns/child")
}

// S5: a chain of `chain` nested contexts, timed phase "create" or "cancel".
func s5(b *testing.B, timeCreate bool) {
	var elapsed time.Duration
	cancels := make([]context.CancelFunc, 0, chain)
	for i := 0; i < b.N; i++ {
		root, cancel := context.WithCancel(context.Background())
		ctx := root
		start := time.Now()
		for j := 0; j < chain; j++ {
			var c context.CancelFunc
			ctx, c = context.WithCancel(ctx)
			cancels = append(cancels, c)
		}
		created := time.Since(start)
		start = time.Now()
		cancel()
		cancelled := time.Since(start)
		if timeCreate {
			elapsed += created
		} else {
			elapsed += cancelled
		}
		cancels = cancels[:0]
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/chain, "ns/level")
}

func BenchmarkS5Create(b *testing.B) { s5(b, true) }
func BenchmarkS5Cancel(b *testing.B) { s5(b, false) }

// S5m: a chain of a million, created and cancelled (Go's stacks grow, so no stack limit here).
func BenchmarkS5m(b *testing.B) {
	for i := 0; i < b.N; i++ {
		root, cancel := context.WithCancel(context.Background())
		ctx := root
		cancels := make([]context.CancelFunc, 0, deep)
		for j := 0; j < deep; j++ {
			var c context.CancelFunc
			ctx, c = context.WithCancel(ctx)
			cancels = append(cancels, c)
		}
		cancel()
		if ctx.Err() == nil {
			b.Fatal("not cancelled")
		}
	}
}

// S6t: cancel -> a goroutine blocked on <-ctx.Done() resumes; p50/p90/p99 over samples.
func BenchmarkS6t(b *testing.B) {
	const samples = 3000
	lat := make([]time.Duration, 0, samples)
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < b.N; i++ {
		lat = lat[:0]
		for s := 0; s < samples; s++ {
			ctx, c := context.WithCancel(parent)
			ready := make(chan struct{})
			resumed := make(chan time.Time)
			go func() {
				done := ctx.Done()
				close(ready)
				<-done
				resumed <- time.Now()
			}()
			<-ready
			time.Sleep(200 * time.Microsecond)
			start := time.Now()
			c()
			lat = append(lat, (<-resumed).Sub(start))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(q float64) float64 { return float64(lat[int(float64(len(lat)-1)*q+0.5)].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.90), "p90-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

type key0 struct{}
type key1 struct{}
type key2 struct{}
type key3 struct{}
type key4 struct{}
type key5 struct{}
type key6 struct{}
type key7 struct{}
type key8 struct{}
type key9 struct{}
type missing struct{}

func tenValues() context.Context {
	ctx := context.Background()
	for i, k := range []any{key0{}, key1{}, key2{}, key3{}, key4{}, key5{}, key6{}, key7{}, key8{}, key9{}} {
		ctx = context.WithValue(ctx, k, i)
	}
	return ctx
}

var sink any

// S7: Value at depth 10, the deepest key and a missing one.
func BenchmarkS7Deepest(b *testing.B) {
	ctx := tenValues()
	for i := 0; i < b.N; i++ {
		sink = ctx.Value(key0{})
	}
}

func BenchmarkS7Missing(b *testing.B) {
	ctx := tenValues()
	for i := 0; i < b.N; i++ {
		sink = ctx.Value(missing{})
	}
}

// S8: heap bytes and allocations per live child, a million children of one parent.
func s8(b *testing.B, timeout bool) {
	for i := 0; i < b.N; i++ {
		parent, cancel := context.WithCancel(context.Background())
		kids := make([]context.CancelFunc, 0, live)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := 0; j < live; j++ {
			var c context.CancelFunc
			if timeout {
				_, c = context.WithTimeout(parent, time.Hour)
			} else {
				_, c = context.WithCancel(parent)
			}
			kids = append(kids, c)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/live, "B/child")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/live, "allocs/child")
		cancel()
		runtime.KeepAlive(kids)
	}
}

func BenchmarkS8(b *testing.B)  { s8(b, false) }
func BenchmarkS8t(b *testing.B) { s8(b, true) }
