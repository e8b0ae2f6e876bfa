package chatroomprom_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/seed014c2c51/chatroom/chatroomprom"
)

// metricName matches a chatroom metric in PromQL; a histogram's series
// end in _bucket, _sum or _count.
var metricName = regexp.MustCompile(`\bchatroom_[a-z_]+\b`)

// Every metric a panel of the Grafana dashboard in docs/ queries is one
// chatroomprom exports, and every one it exports is on the dashboard.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}

	reg := prometheus.NewPedanticRegistry()
	if _, err := chatroomprom.New(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := make(map[string]bool) // name: queried
	for _, f := range families {
		exported[f.GetName()] = false
	}

	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			names := metricName.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no chatroom metric", p.Title, q.Expr)
			}
			for _, name := range names {
				base := name
				if strings.Contains(q.Expr, "histogram_quantile") {
					base = strings.TrimSuffix(name, "_bucket")
				}
				if _, ok := exported[base]; !ok {
					t.Errorf("panel %q queries %s, which chatroomprom does not export", p.Title, name)
					continue
				}
				exported[base] = true
			}
		}
	}
	var missing []string
	for name, queried := range exported {
		if !queried {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("no panel shows %v", missing)
	}
}
