// Package scrape reads a Prometheus endpoint's samples, for the tests of the
// plugin's metrics.
package scrape

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics returns every sample at http://addr/metrics by name{labels},
// labels sorted; a histogram as name_bucket{...,le="bound"}, name_count and
// name_sum.
func Metrics(addr string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := func(suffix string, extra ...string) string {
				ls := append(append([]string{}, labels...), extra...)
				sort.Strings(ls)
				return name + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key("")] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key("")] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key("_count")] = float64(m.Histogram.GetSampleCount())
				out[key("_sum")] = m.Histogram.GetSampleSum()
				for _, b := range m.Histogram.Bucket {
					out[key("_bucket", fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out, nil
}
