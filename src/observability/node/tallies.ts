// Metrics kept as plain tallies and read by a prom-client Registry at scrape time. prom-client's own
// Counter and Histogram hash and validate their labels on every call (~2 µs per request for the two,
// BENCHMARKS.md); these are a map lookup and an addition, and they need no prom-client until the first
// scrape (prometheus.ts). Their exposition is the one prom-client gives for a counter and a histogram
// with the same labels.

type Sample = { labels: Record<string, string | number>; sharedLabels?: Record<string, string>; value: number; metricName?: string }

/** What a prom-client Registry reads from a registered metric. */
export interface CollectedMetric {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>
}

/** A counter with two labels, counted per first and second label value. */
export function tallyCounter(opts: { name: string; help: string; labelNames: readonly [string, string] }) {
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
  return {
    metric,
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

/** A counter with at most one label. Without one it reads 0 before its first inc, as prom-client's does. */
export function eventCounter(opts: { name: string; help: string; labelName?: string }) {
  const { name, help, labelName } = opts
  const counts = new Map<string, number>(labelName === undefined ? [['', 0]] : [])
  const metric: CollectedMetric = {
    name,
    help,
    type: 'counter',
    aggregator: 'sum',
    async get() {
      const values = [...counts].map(([label, value]) => ({ labels: labelName === undefined ? {} : { [labelName]: label }, value }))
      return { name, help, type: 'counter', aggregator: 'sum', values }
    },
  }
  return {
    metric,
    inc(label = ''): void {
      counts.set(label, (counts.get(label) ?? 0) + 1)
    },
  }
}

/** A histogram with one label, its buckets counted per label value. */
export function tallyHistogram(opts: { name: string; help: string; labelName: string; buckets: readonly number[] }) {
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
  return {
    metric,
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
