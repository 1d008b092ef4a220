import { spawn } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBenchGateway } from './lib/gateway.js'
import { closeHttp } from './lib/http.js'
import { measureLoad } from './lib/load.js'
import { stopAll } from './lib/procs.js'
const dir = await mkdtemp(join(tmpdir(), 'sys-'))
const env = (id: string) => ({
  DATABASE_URL: `file:${join(dir, 'g.db')}`,
  CLUSTER_SECRET: 'peek-secret-0123456789abcdef',
  GATEWAY_ID: id,
  PREWARM_POOL_SIZE: '0',
})
const events = process.env.EVENTS ?? 'raw_syscalls:sys_enter,sched:sched_switch,context-switches,task-clock'
try {
  const owner = await startBenchGateway({ name: 'owner', env: env('owner') })
  const other = await startBenchGateway({ name: 'other', env: env('other') })
  await owner.enable('p', 'echo')
  await owner.get('p', 'echo', '/items/1')
  await other.get('p', 'echo', '/items/1')
  const w = (await owner.workers())[0]
  for (const [name, url] of [
    ['owner', owner.url],
    ['forwarded', other.url],
  ] as const) {
    await measureLoad(`${url}/orgs/p/plugins/echo/items/1`, { connections: 32, durationS: 1, warmupS: 0 })
    const perfs = [
      ['owner', owner.pid],
      ['other', other.pid],
      ['worker', w?.pid],
    ].map(([n, pid]) => {
      const p = spawn('perf', ['stat', '-x,', '-e', events, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
      let out = ''
      p.stderr.on('data', (d) => (out += d))
      return { n, p, done: new Promise<string>((r) => p.on('exit', () => r(out))) }
    })
    await new Promise((r) => setTimeout(r, 300))
    const r = await measureLoad(`${url}/orgs/p/plugins/echo/items/1`, { connections: 32, durationS: 3, warmupS: 0 })
    for (const x of perfs) x.p.kill('SIGINT')
    console.log(`== ${name}: ${r.requests} requests, ${Math.round(r.rps)} rps`)
    for (const x of perfs) {
      const out = await x.done
      for (const line of out.trim().split('\n')) {
        const f = line.split(',')
        console.log(`  ${String(x.n).padEnd(6)} ${f[2]?.padEnd(28)} ${(Number(f[0]) / r.requests).toFixed(2)} per req`)
      }
    }
  }
} finally {
  await stopAll()
  await closeHttp()
}
