// Cold-start cost of our SDK v2 runner against the floor: a bare node:http server.
//
//   npm run bench:runner [-- --runs=30 --poll-ms=2]
//
// Both are spawned the same way (same minimal worker env, CONTRACT.md §2; stdio ignored, no IPC),
// interleaved, and timed from spawn() to the first 200 answer of GET /health, polled every
// --poll-ms. Needs `npm run build` first (it runs dist/, as the gateway does).
//
// Wall time swings with whatever else the machine runs, so the CPU time each child had used by
// then (Linux /proc/<pid>/task/*/schedstat, all threads) is shown too: it barely moves with load.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import getPort from 'get-port'
import { workerBaseEnv } from '../src/config.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const runnerPath = resolve(root, 'sdk/dist/runner.cjs')
const pluginPath = resolve(root, 'examples/plugins/echo')

if (!existsSync(runnerPath)) {
  console.error(`bench-runner: ${runnerPath} is missing; run \`npm run build\` first`)
  process.exit(1)
}

const flag = (name: string, fallback: number): number => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  return arg ? Number(arg.slice(name.length + 3)) : fallback
}
const runs = flag('runs', 30)
const pollMs = flag('poll-ms', 2)
const warmup = 3

const ORG_ID = 'bench-org'
const env: NodeJS.ProcessEnv = {
  ...workerBaseEnv({ TMPDIR: '/tmp', ...process.env, NODE_ENV: 'production' }),
  HAY_ORG_CONFIG: JSON.stringify({ org: { id: ORG_ID }, config: {} }),
}

const BARE_SERVER = `require('node:http').createServer((q, s) => {
  s.writeHead(200, { 'content-type': 'application/json' })
  s.end(JSON.stringify({ status: 'healthy', pid: process.pid }))
}).listen(Number(process.argv[1]), '127.0.0.1')`

type Kind = 'bare' | 'runner'

function spawnKind(kind: Kind, port: number): ChildProcess {
  const args =
    kind === 'bare'
      ? ['-e', BARE_SERVER, String(port)]
      : [runnerPath, `--plugin-path=${pluginPath}`, `--org-id=${ORG_ID}`, `--port=${port}`, '--mode=production']
  return spawn(process.execPath, args, { env, stdio: 'ignore' })
}

/** Resolves with the time the first 200 of GET /health arrived; retries refused connections. */
function firstHealthy(port: number, child: ChildProcess): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    let done = false
    const onExit = (code: number | null) => {
      done = true
      reject(new Error(`child exited (${code}) before answering`))
    }
    child.once('exit', onExit)
    const attempt = () => {
      const req = request({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
        const at = performance.now()
        res.resume()
        if (res.statusCode === 200) {
          done = true
          child.off('exit', onExit)
          resolvePromise(at)
        } else if (!done) setTimeout(attempt, pollMs)
      })
      req.on('error', () => {
        if (!done) setTimeout(attempt, pollMs)
      })
      req.end()
    }
    attempt()
  })
}

/** CPU time (ms) all of the process's threads have used so far; NaN where /proc has no schedstat. */
function cpuMs(pid: number): number {
  try {
    let ns = 0
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ', 1)[0])
    }
    return ns / 1e6
  } catch {
    return NaN // not Linux, or the process is already gone: the column shows NaN
  }
}

async function measure(kind: Kind): Promise<{ wallMs: number; cpuMs: number }> {
  const port = await getPort()
  const start = performance.now()
  const child = spawnKind(kind, port)
  const exited = once(child, 'exit')
  try {
    const wallMs = (await firstHealthy(port, child)) - start
    return { wallMs, cpuMs: cpuMs(child.pid as number) }
  } finally {
    child.kill('SIGKILL')
    await exited
  }
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return { p50: pct(s, 50), p95: pct(s, 95), min: s[0] ?? NaN, mean: xs.reduce((a, b) => a + b, 0) / xs.length }
}
const fmt = (n: number) => n.toFixed(1).padStart(7)

const wall: Record<Kind, number[]> = { bare: [], runner: [] }
const cpu: Record<Kind, number[]> = { bare: [], runner: [] }
for (let i = 0; i < warmup + runs; i++) {
  // Alternate which goes first so neither always runs on a freshly idle machine.
  const order: Kind[] = i % 2 === 0 ? ['bare', 'runner'] : ['runner', 'bare']
  for (const kind of order) {
    const m = await measure(kind)
    if (i < warmup) continue
    wall[kind].push(m.wallMs)
    cpu[kind].push(m.cpuMs)
  }
}

const row = (name: string, w: ReturnType<typeof stats>, c: ReturnType<typeof stats>) =>
  `${name.padEnd(8)}${fmt(w.p50)} ${fmt(w.p95)} ${fmt(w.min)} ${fmt(w.mean)}   ${fmt(c.p50)} ${fmt(c.p95)}`
const diff = (a: ReturnType<typeof stats>, b: ReturnType<typeof stats>) => ({
  p50: a.p50 - b.p50,
  p95: a.p95 - b.p95,
  min: a.min - b.min,
  mean: a.mean - b.mean,
})
const [bw, rw, bc, rc] = [stats(wall.bare), stats(wall.runner), stats(cpu.bare), stats(cpu.runner)]
console.log(
  `spawn → first 200 of GET /health, ${runs} runs each (after ${warmup} warm-up), poll every ${pollMs} ms, node ${process.version}`,
)
console.log(`        ---------- wall (ms) ----------   --- CPU (ms) ---`)
console.log(`            p50     p95     min    mean       p50     p95`)
console.log(row('bare', bw, bc))
console.log(row('runner', rw, rc))
console.log(row('diff', diff(rw, bw), diff(rc, bc)))
