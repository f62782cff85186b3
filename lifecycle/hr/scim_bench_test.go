package hr

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// BenchmarkSCIMCreate measures durable SCIM writes: POST /Users from 8
// concurrent clients, each a new worker stored (fsync'd) in a real
// engine on a bbolt file. "http" goes over loopback HTTP with keep-alive
// connections, as an HR system would; "handler" calls the handler
// directly, to show the HTTP stack's share; "store" writes the same
// records with Engine.UpsertHR, the ceiling SCIM works under.
func BenchmarkSCIMCreate(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		e := newTestEngine(b, 0)
		var n atomic.Int64
		b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				rec := lifecycle.HRRecord{ID: connectors.WorkerID(fmt.Sprintf("w-%d", i)), UserName: fmt.Sprintf("user%d@piedpiper.com", i),
					ExternalID: fmt.Sprintf("ext-%d", i), Email: fmt.Sprintf("user%d@piedpiper.com", i), GivenName: "U",
					FamilyName: fmt.Sprint(i), Title: "Engineer", Department: "Engineering", Division: "Engineering", Active: true}
				if _, _, err := e.UpsertHR(context.Background(), "bench", rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	for _, mode := range []string{"http", "handler"} {
		b.Run(mode, func(b *testing.B) {
			e := newTestEngine(b, 0)
			handler, err := NewSCIM(SCIMOptions{Store: e, Tokens: []Token{{Name: "hr", Secret: testToken}}})
			if err != nil {
				b.Fatal(err)
			}
			var post func(body string) int
			if mode == "http" {
				srv := httptest.NewServer(handler)
				b.Cleanup(srv.Close)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
				post = func(body string) int {
					req, _ := http.NewRequest("POST", srv.URL+BasePath+"/Users", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+testToken)
					req.Header.Set("Content-Type", "application/scim+json")
					res, err := client.Do(req)
					if err != nil {
						return 0
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					return res.StatusCode
				}
			} else {
				post = func(body string) int { return serve(handler, "POST", "/Users", body).Code }
			}
			var n, failed atomic.Int64
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0))) // 8 clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],`+
						`"userName":"user%d@piedpiper.com","externalId":"ext-%d","active":true,"name":{"givenName":"U","familyName":"%d"},`+
						`"emails":[{"primary":true,"type":"work","value":"user%d@piedpiper.com"}],"title":"Engineer",`+
						`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Engineering","division":"Engineering"}}`, i, i, i, i)
					if post(body) != http.StatusCreated {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d of %d POSTs failed", failed.Load(), n.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
