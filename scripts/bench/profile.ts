// CPU profile of the gateway's hot path: the gateway runs under --cpu-prof while autocannon drives
// warm proxied requests at it; the profile's top self-time functions and modules are printed, from
// the samples taken during the measured load only, as µs per request (the profiler's own overhead
// makes them larger than the CPU time per request a bench run reports: read them as shares).
//
//   npm run build && npx tsx scripts/bench/profile.ts [--seconds=10] [--connections=32] [--top=40] [--callers=<regex>] [--depth=6] [--keep]
//     [--env="PUBLIC_FAST_PATH=false"]   (gateway environment)
//     [--interval=100]   (sampling interval, µs; V8's default is 1000)
//     [--proxy=undici|forwarder]   profile that reference proxy instead, in front of the gateway's warm worker
//     [--cluster]   two gateways on one database: the load goes to the one that does not own the worker, both are profiled
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { startBenchGateway } from './lib/gateway.js'
import { closeHttp } from './lib/http.js'
import { measureLoad } from './lib/load.js'
import { ROOT } from './lib/paths.js'
import { cpuNs, leftovers, stopAll } from './lib/procs.js'
import { startGatewayForwarder, startUndiciProxy } from './lib/reference-proxies.js'

const flag = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const seconds = flag('seconds', 10)
const connections = flag('connections', 32)
const top = flag('top', 40)
// --callers=<regex>: also print the call stacks (--depth frames) that spend self time in matching functions.
const callers = process.argv.find((a) => a.startsWith('--callers='))?.slice('--callers='.length)
const depth = flag('depth', 6)

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount?: number
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  /** µs on the monotonic clock, the one process.hrtime reads. */
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

const env = Object.fromEntries(
  (process.argv.find((a) => a.startsWith('--env='))?.slice('--env='.length) ?? '')
    .split(' ')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
)
// The syscalls that send on a socket; on loopback they also run the receiver's side of TCP.
const SOCKET_WRITES = /^(writev|writeLatin1String|writeUtf8String|writeBuffer|writeAsciiString) {2}$/

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

const clustered = process.argv.includes('--cluster')
const proxyName = process.argv.find((a) => a.startsWith('--proxy='))?.slice('--proxy='.length)
const PROXIES = { undici: startUndiciProxy, forwarder: startGatewayForwarder } as const
const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-prof-'))
try {
  const profiling = (name: string) => ['--cpu-prof', `--cpu-prof-dir=${join(dir, name)}`, `--cpu-prof-interval=${flag('interval', 1000)}`]
  const gateway = (name: string, extra: Record<string, string> = {}, profiled = true) =>
    startBenchGateway({ name, nodeArgs: profiled ? profiling(name) : [], env: { ...env, ...extra } })
  const cluster = (id: string) => ({
    DATABASE_URL: `file:${join(dir, 'cluster.db')}`,
    CLUSTER_SECRET: 'profile-cluster-secret-0123',
    GATEWAY_ID: id,
  })
  const owner = await gateway('owner', clustered ? cluster('owner') : {}, proxyName === undefined)
  const other = clustered ? await gateway('non-owner', cluster('non-owner')) : undefined
  await owner.enable('prof', 'echo')
  await owner.get('prof', 'echo', '/items/1') // the owner starts the worker
  // What is loaded and profiled: the gateway (or the non-owner and the owner), or a reference proxy.
  let profiled: Array<{ name: string; pid: number; stop(): Promise<void> }> = other
    ? [
        { name: 'non-owner', pid: other.pid, stop: () => other.stop() },
        { name: 'owner', pid: owner.pid, stop: () => owner.stop() },
      ]
    : [{ name: 'owner', pid: owner.pid, stop: () => owner.stop() }]
  let url = `${(other ?? owner).url}/orgs/prof/plugins/echo/items/1`
  if (proxyName !== undefined) {
    const start = PROXIES[proxyName as keyof typeof PROXIES]
    if (!start) throw new Error(`--proxy=${proxyName}: one of ${Object.keys(PROXIES).join(', ')}`)
    const worker = (await owner.workers())[0]
    const proxy = await start(`http://127.0.0.1:${worker?.port}`, profiling(proxyName))
    profiled = [{ name: proxyName, pid: proxy.pid, stop: () => proxy.stop() }]
    url = `${proxy.url}/items/1`
  }
  await measureLoad(url, { connections, durationS: 1, warmupS: 0 })
  const cpuBefore = profiled.map((p) => cpuNs(p.pid))
  const from = monotonicUs()
  const r = await measureLoad(url, { connections, durationS: seconds, warmupS: 0 })
  const to = monotonicUs()
  const cpuUs = profiled.map((p, i) => `${p.name} ${((cpuNs(p.pid) - (cpuBefore[i] ?? 0)) / 1000 / r.requests).toFixed(1)}`)
  for (const p of profiled) await p.stop() // SIGTERM: the process exits cleanly, which writes the profile
  console.log(
    `load: ${Math.round(r.rps)} rps at c=${connections}, p99 ${r.p99Ms} ms, errors ${r.errors}; ` +
      `CPU µs per request (profiler included): ${cpuUs.join(', ')}\n`,
  )
  for (const { name } of profiled) {
    const file = (await readdir(join(dir, name))).find((f) => f.endsWith('.cpuprofile'))
    if (!file) throw new Error(`no .cpuprofile written by ${name}`)
    if (profiled.length > 1) console.log(`=== ${name} ===\n`)
    summarize(within(JSON.parse(await readFile(join(dir, name, file), 'utf8')) as CpuProfile, from, to), r.requests)
    if (process.argv.includes('--keep')) console.log(`\nprofile kept: ${join(dir, name, file)}`)
  }
} finally {
  await stopAll()
  await closeHttp()
  if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true })
  const left = leftovers()
  if (left.length > 0) console.error('left running:', left)
}

/** The profile's samples taken between from and to (µs, monotonic). */
function within(p: CpuProfile, from: number, to: number): CpuProfile {
  const samples: number[] = []
  const timeDeltas: number[] = []
  let at = p.startTime
  for (const [i, id] of p.samples.entries()) {
    at += p.timeDeltas[i] ?? 0
    if (at < from || at > to) continue
    samples.push(id)
    timeDeltas.push(p.timeDeltas[i] ?? 0)
  }
  return { ...p, samples, timeDeltas }
}

function summarize(p: CpuProfile, requests: number): void {
  // Self time per node: sum of the sampling intervals attributed to it.
  const selfUs = new Map<number, number>()
  for (const [i, id] of p.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const byFn = new Map<string, number>()
  const byModule = new Map<string, number>()
  for (const node of p.nodes) {
    const us = selfUs.get(node.id) ?? 0
    if (us === 0) continue
    const { functionName, url, lineNumber } = node.callFrame
    const where = shortUrl(url)
    const fn = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`
    byFn.set(fn, (byFn.get(fn) ?? 0) + us)
    byModule.set(moduleOf(url, functionName), (byModule.get(moduleOf(url, functionName)) ?? 0) + us)
  }
  const busy = total - (byFn.get('(idle)  ') ?? 0)
  console.log(`${requests} requests; ${(busy / requests).toFixed(1)} µs busy per request in the profile\n`)
  const print = (title: string, m: Map<string, number>, n: number) => {
    console.log(`${title} (share of all samples, µs per request)`)
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(`${((100 * us) / total).toFixed(1).padStart(6)}%  ${(us / requests).toFixed(2).padStart(7)} µs  ${k}`)
    }
    console.log('')
  }
  const byLayer = new Map<string, number>()
  for (const [module, us] of byModule) byLayer.set(layerOf(module), (byLayer.get(layerOf(module)) ?? 0) + us)
  for (const [fn, us] of byFn) {
    if (!SOCKET_WRITES.test(fn)) continue
    byLayer.set('kernel: socket writes (native)', (byLayer.get('kernel: socket writes (native)') ?? 0) + us)
    byLayer.set('native, other', (byLayer.get('native, other') ?? 0) - us)
  }
  byLayer.delete('(idle)')
  console.log('self time by layer (share of busy samples, µs per request)')
  for (const [k, us] of [...byLayer].sort((a, b) => b[1] - a[1])) {
    console.log(`${((100 * us) / busy).toFixed(1).padStart(6)}%  ${(us / requests).toFixed(2).padStart(7)} µs  ${k}`)
  }
  console.log('')
  print('self time by module', byModule, 25)
  print('self time by function', byFn, top)
  printInclusive(p, selfUs, total, top, requests)
  if (callers) printCallers(p, selfUs, total, new RegExp(callers))
}

/** Inclusive (self + callees) time per function, each sample counted once per function on its stack. */
function printInclusive(p: CpuProfile, selfUs: Map<number, number>, total: number, n: number, requests: number): void {
  const byId = new Map(p.nodes.map((node) => [node.id, node]))
  const inclusive = new Map<string, number>()
  const visit = (id: number, onStack: ReadonlySet<string>) => {
    const node = byId.get(id)
    if (!node) return
    const { functionName, url, lineNumber } = node.callFrame
    const key = `${functionName || '(anonymous)'}  ${shortUrl(url)}${url ? `:${lineNumber + 1}` : ''}`
    const stack = onStack.has(key) ? onStack : new Set([...onStack, key])
    const us = selfUs.get(id) ?? 0
    if (us > 0) for (const k of stack) inclusive.set(k, (inclusive.get(k) ?? 0) + us)
    for (const child of node.children ?? []) visit(child, stack)
  }
  const root = p.nodes[0]
  if (root) visit(root.id, new Set())
  console.log('inclusive time by function (share of all samples, µs per request)')
  for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(6)}%  ${(us / requests).toFixed(2).padStart(7)} µs  ${k}`)
  }
  console.log('')
}

function printCallers(p: CpuProfile, selfUs: Map<number, number>, total: number, re: RegExp): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const label = (n: ProfileNode) =>
    `${n.callFrame.functionName || '(anonymous)'}@${shortUrl(n.callFrame.url).split('/').pop()}:${n.callFrame.lineNumber + 1}`
  const stacks = new Map<string, number>()
  for (const n of p.nodes) {
    const us = selfUs.get(n.id) ?? 0
    if (us === 0 || !re.test(n.callFrame.functionName)) continue
    const frames: string[] = []
    for (let id: number | undefined = n.id; id !== undefined && frames.length < depth; id = parent.get(id)) {
      const node = byId.get(id)
      if (node) frames.push(label(node))
    }
    const key = frames.join(' ← ')
    stacks.set(key, (stacks.get(key) ?? 0) + us)
  }
  console.log(`stacks into /${re.source}/`)
  for (const [k, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(6)}%  ${k}`)
  }
}

/** The part of the stack a module belongs to, for the per-layer split of a request's CPU time. */
function layerOf(module: string): string {
  if (module === '(idle)') return '(idle)'
  if (module === '(garbage collector)') return 'garbage collector'
  if (module === '(native)' || module === '(program)') return 'native, other'
  if (module.startsWith('node:')) return 'node: http, net, streams, events, timers'
  if (module === 'undici' || module.startsWith('wasm://')) return 'undici (and its llhttp parser)'
  if (module === 'hono' || module === '@hono/node-server') return 'hono, @hono/node-server (routers for declared routes too)'
  if (module.startsWith('dist/proxy/')) return 'gateway: forwarder (dist/proxy)'
  if (module.startsWith('dist/node/')) return 'gateway: Node entry, fast path (dist/node)'
  if (/^dist\/(routes|gateway|cluster|metadata|registry|contract)\//.test(module)) return 'gateway: rules and admission'
  if (/^dist\/(workers|observability|core)\//.test(module) || module === 'prom-client') return 'gateway: pool, leases, metrics'
  return 'other modules'
}

function shortUrl(url: string): string {
  if (!url) return ''
  const path = url.replace(/^file:\/\//, '')
  return path.startsWith(ROOT) ? relative(ROOT, path) : path
}

function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) return url
  const path = shortUrl(url)
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  if (nm) return nm[1] as string
  return path.replace(/^dist\//, 'dist/')
}
