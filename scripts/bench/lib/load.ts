import autocannon from 'autocannon'
import { cpuNs } from './procs.js'

export interface LoadResult {
  rps: number
  /** autocannon reports whole milliseconds (NOTES.md): useful at c=32, not at c=1. */
  p50Ms: number
  p99Ms: number
  /** connections / rps: the mean latency, exact to the µs even when percentiles are whole ms. */
  meanMs: number
  requests: number
  errors: number
  /** CPU the measured processes used per request (µs), when `cpuPids` were given: robust to background load. */
  cpuUsPerRequest: number
}

export interface LoadOptions {
  connections: number
  durationS: number
  warmupS: number
  /** Processes whose CPU time is charged to the requests (the proxy under test). */
  cpuPids?: readonly number[]
}

function run(url: string, connections: number, durationS: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, connections, duration: durationS, pipelining: 1 }, (err, result) =>
      err ? reject(err) : resolve(result),
    )
    // Bounded: autocannon stops itself after `duration`; this guards against a wedged target.
    const guard = setTimeout(() => instance.stop(), (durationS + 10) * 1000)
    instance.once('done', () => clearTimeout(guard))
  })
}

/** Warm-up (discarded), then one measured run against url. */
export async function measureLoad(url: string, opts: LoadOptions): Promise<LoadResult> {
  if (opts.warmupS > 0) await run(url, opts.connections, opts.warmupS)
  const cpu = () => (opts.cpuPids ?? []).reduce((sum, pid) => sum + cpuNs(pid), 0)
  const cpuBefore = cpu()
  const r = await run(url, opts.connections, opts.durationS)
  const cpuUsed = cpu() - cpuBefore
  const seconds = (new Date(r.finish).getTime() - new Date(r.start).getTime()) / 1000 || r.duration
  const rps = r.requests.total / seconds
  return {
    rps,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    meanMs: (1000 * opts.connections) / rps,
    requests: r.requests.total,
    errors: r.errors + r.timeouts + r.non2xx,
    cpuUsPerRequest: opts.cpuPids?.length ? cpuUsed / 1000 / r.requests.total : NaN,
  }
}
