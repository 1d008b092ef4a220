import type { Registry } from 'prom-client'

// Metrics observed on every request, kept as plain tallies and read by the registry at scrape time.
// prom-client's own Counter and Histogram hash and validate their labels on every call (~2 µs per
// request for the two, BENCHMARKS.md); these are a map lookup and an addition. Their exposition is
// the one prom-client gives for a counter and a histogram with the same labels.

type Sample = { labels: Record<string, string | number>; sharedLabels?: Record<string, string>; value: number; metricName?: string }

/** What a prom-client Registry reads from a registered metric. */
interface CollectedMetric {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>
}

/** A counter with two labels, counted per first and second label value. */
export function tallyCounter(registry: Registry, opts: { name: string; help: string; labelNames: readonly [string, string] }) {
  const [first, second] = opts.labelNames
  const counts = new Map<string, Map<string | number, number>>()
  const metric: CollectedMetric = {
    name: opts.name,
    help: opts.help,
    type: 'counter',
    aggregator: 'sum',
    async get() {
      const values: Sample[] = []
      for (const [a, byB] of counts) for (const [b, value] of byB) values.push({ labels: { [first]: a, [second]: String(b) }, value })
      return { name: opts.name, help: opts.help, type: 'counter', aggregator: 'sum', values }
    },
  }
  registry.registerMetric(metric as never)
  return {
    inc(a: string, b: string | number): void {
      let byB = counts.get(a)
      if (!byB) {
        byB = new Map()
        counts.set(a, byB)
      }
      byB.set(b, (byB.get(b) ?? 0) + 1)
    },
  }
}

/** A histogram with one label, its buckets counted per label value. */
export function tallyHistogram(registry: Registry, opts: { name: string; help: string; labelName: string; buckets: readonly number[] }) {
  const { name, labelName, buckets } = opts
  const series = new Map<string, { counts: Float64Array; sum: number; count: number }>()
  const metric: CollectedMetric = {
    name,
    help: opts.help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: Sample[] = []
      for (const [labelValue, s] of series) {
        const shared = { [labelName]: labelValue }
        let cumulative = 0
        buckets.forEach((le, i) => {
          cumulative += s.counts[i] ?? 0
          values.push({ labels: { le }, sharedLabels: shared, value: cumulative, metricName: `${name}_bucket` })
        })
        values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: s.count, metricName: `${name}_bucket` })
        values.push({ labels: {}, sharedLabels: shared, value: s.sum, metricName: `${name}_sum` })
        values.push({ labels: {}, sharedLabels: shared, value: s.count, metricName: `${name}_count` })
      }
      return { name, help: opts.help, type: 'histogram', aggregator: 'sum', values }
    },
  }
  registry.registerMetric(metric as never)
  return {
    observe(labelValue: string, value: number): void {
      let s = series.get(labelValue)
      if (!s) {
        s = { counts: new Float64Array(buckets.length), sum: 0, count: 0 }
        series.set(labelValue, s)
      }
      let i = 0
      while (i < buckets.length && value > (buckets[i] as number)) i++
      if (i < buckets.length) s.counts[i] = (s.counts[i] ?? 0) + 1
      s.sum += value
      s.count++
    },
  }
}
