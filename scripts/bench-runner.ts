// Cold-start cost of our SDK v2 runner against the floor: a bare node:http server.
//
//   npm run bench:runner [-- --runs=30 --poll-ms=2]
//
// Both are spawned the same way (same minimal worker env, CONTRACT.md §2; stdio ignored, no IPC),
// interleaved, and timed from spawn() to the first 200 answer of GET /health, polled every
// --poll-ms. Needs `npm run build` first (it runs dist/, as the gateway does).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import getPort from 'get-port'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const runnerPath = resolve(root, 'sdk/dist/runner/main.js')
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
  PATH: process.env['PATH'],
  NODE_ENV: 'production',
  HOME: process.env['HOME'],
  TMPDIR: process.env['TMPDIR'] ?? '/tmp',
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

async function measure(kind: Kind): Promise<number> {
  const port = await getPort()
  const start = performance.now()
  const child = spawnKind(kind, port)
  const exited = once(child, 'exit')
  try {
    return (await firstHealthy(port, child)) - start
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

const samples: Record<Kind, number[]> = { bare: [], runner: [] }
for (let i = 0; i < warmup + runs; i++) {
  // Alternate which goes first so neither always runs on a freshly idle machine.
  const order: Kind[] = i % 2 === 0 ? ['bare', 'runner'] : ['runner', 'bare']
  for (const kind of order) {
    const ms = await measure(kind)
    if (i >= warmup) samples[kind].push(ms)
  }
}

const bare = stats(samples.bare)
const runner = stats(samples.runner)
console.log(`spawn → first 200 of GET /health, ${runs} runs each (after ${warmup} warm-up), poll every ${pollMs} ms, node ${process.version}`)
console.log(`            p50     p95     min    mean   (ms)`)
console.log(`bare    ${fmt(bare.p50)} ${fmt(bare.p95)} ${fmt(bare.min)} ${fmt(bare.mean)}`)
console.log(`runner  ${fmt(runner.p50)} ${fmt(runner.p95)} ${fmt(runner.min)} ${fmt(runner.mean)}`)
console.log(`diff    ${fmt(runner.p50 - bare.p50)} ${fmt(runner.p95 - bare.p95)} ${fmt(runner.min - bare.min)} ${fmt(runner.mean - bare.mean)}`)
