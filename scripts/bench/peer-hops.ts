// Scenario 9: what the cluster's second hop costs by transport, with no gateway code in the way. The
// undici baseline's proxy stands in for both gateways (proxies/peer-hop.ts); only how the non-owner
// reaches the owner changes. It answers whether a transport the gateway does not use today would
// reach the non-owner goal of scenario 8 (≥ 0.6× the owner's throughput) on this machine.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { measureLoad, type LoadResult } from './lib/load.js'
import { PROXIES_DIR, ROOT } from './lib/paths.js'
import { minimalEnv, type Proc, startProcess } from './lib/procs.js'
import type { Section } from './lib/report.js'
import { fmt, median, paired, ratio } from './lib/stats.js'

export interface PeerHopsOptions {
  durationS: number
  warmupS: number
  rounds: number
  connections: number
}

const TRANSPORTS = [
  { id: 'tcp', name: 'HTTP/1.1 keep-alive, TCP (what the gateway does)' },
  { id: 'unix', name: 'HTTP/1.1 keep-alive, unix socket' },
  { id: 'pipelining', name: 'HTTP/1.1 pipelining (8 per connection, 4 connections)' },
  { id: 'h2c', name: 'HTTP/2 cleartext, one connection (undici H2CClient → node:http2)' },
  { id: 'relay', name: 'no HTTP: the client connection relayed byte for byte' },
] as const

async function start(name: string, env: Record<string, string>): Promise<{ proc: Proc; url: string; h2c?: string }> {
  const proc = startProcess(name, process.execPath, ['--import', 'tsx', join(PROXIES_DIR, 'peer-hop.ts')], {
    env: minimalEnv({ PORT: '0', ...env }),
    cwd: ROOT,
  })
  const [, url = '', h2c] = await proc.waitForLine(/listening on (\S+)(?: h2c (\S+))?/)
  return { proc, url, h2c }
}

export async function peerHops(opts: PeerHopsOptions): Promise<Section> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-bench-peer-hops-'))
  const procs: Proc[] = []
  try {
    const upstream = await start('upstream', { ROLE: 'upstream' })
    procs.push(upstream.proc)
    const socket = join(dir, 'owner.sock')
    const owner = await start('owner', { ROLE: 'owner', UPSTREAM: upstream.url, SOCKET: socket })
    procs.push(owner.proc)
    const peers = []
    for (const t of TRANSPORTS) {
      const peer = await start(`peer (${t.id})`, {
        ROLE: 'peer',
        TRANSPORT: t.id,
        OWNER: owner.url,
        OWNER_SOCKET: socket,
        OWNER_H2C: owner.h2c ?? '',
      })
      procs.push(peer.proc)
      peers.push({ name: `through a peer: ${t.name}`, url: peer.url, cpuPids: [peer.proc.pid, owner.proc.pid] })
    }
    const ownerPath = { name: 'the owner alone', url: owner.url, cpuPids: [owner.proc.pid] }
    const paths = [ownerPath, ...peers]

    // Rounds rotate the order, so no path always runs first on a freshly idle machine; each figure is the
    // median over rounds, each ratio the median of per-round ratios to the owner alone.
    const results = new Map<string, LoadResult[]>()
    for (let round = 0; round < opts.rounds; round++) {
      const shift = round % paths.length
      for (const path of [...paths.slice(shift), ...paths.slice(0, shift)]) {
        const r = await measureLoad(`${path.url}/items/1`, {
          connections: opts.connections,
          durationS: opts.durationS,
          warmupS: opts.warmupS,
          cpuPids: path.cpuPids,
        })
        results.set(path.name, [...(results.get(path.name) ?? []), r])
      }
    }
    const of = (name: string) => results.get(name) ?? []
    const rows = paths.map(({ name }) => {
      const rs = of(name)
      const vsOwner = name === ownerPath.name ? 1 : median(paired(rs, of(ownerPath.name), (p, o) => ratio(p.rps, o.rps)))
      return [
        name,
        fmt(median(rs.map((r) => r.rps)), 0),
        `${fmt(vsOwner, 2)}×`,
        fmt(median(rs.map((r) => r.cpuUsPerRequest)), 1),
        String(rs.reduce((n, r) => n + r.errors, 0)),
      ]
    })
    return {
      title: 'Cluster: the second hop by transport (reference proxies, no gateway)',
      method:
        `An upstream (node:http), an "owner" (the undici baseline's proxy to it) and one "non-owner" per transport (the same proxy to ` +
        `the owner, or a byte relay): scripts/bench/proxies/peer-hop.ts. Each path loaded with autocannon at c=${opts.connections}, ` +
        `${opts.rounds} round(s) of ${opts.durationS} s after ${opts.warmupS} s warm-up, the order rotated every round; rps is the median ` +
        `over rounds, "vs owner" the median of per-round ratios. CPU µs/req counts the proxies on the path.`,
      tables: [{ headers: ['path', 'rps', 'vs owner', 'CPU µs/req', 'errors'], rows }],
      notes: [],
      targets: [],
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()))
    await rm(dir, { recursive: true, force: true })
  }
}
