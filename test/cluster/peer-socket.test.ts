// README, Several gateways on one database: peers on one host forward over a unix socket beside the database file.
import { existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs'
import { request } from 'node:http'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/gateway.js'
import { enable } from '../helpers/gateway-process.js'
import { SECRET, startCluster } from './harness.js'

interface Echo {
  headers: Record<string, string>
}

/** The x-forwarded-for the echo worker saw for a request sent to `url` (one entry per hop in front of the owner). */
async function forwardedFor(url: string): Promise<string> {
  const res = await fetch(`${url}/orgs/acme/plugins/echo/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  })
  expect(res.status).toBe(200)
  return ((await res.json()) as Echo).headers['x-forwarded-for'] ?? ''
}

/** One request on a unix socket, as any local process could send it. */
function onSocket(socketPath: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: { host: 'localhost', ...headers } }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
    })
    req.on('error', reject).end()
  })
}

describe('peers on one host', () => {
  it('forward over the owner’s unix socket, which serves the gateways of the cluster only', async () => {
    const { dir, gateways, repo } = await startCluster(2)
    const [owner, other] = [gateways[0]!, gateways[1]!]
    const socket = join(dir, 'gateway.db.gw0.sock')
    expect(lstatSync(socket).isSocket()).toBe(true)
    expect(lstatSync(socket).mode & 0o777).toBe(0o600)
    expect((await repo.gateway('gw0'))?.socketPath).toBe(socket)

    await enable(owner.url, 'acme', 'echo')
    expect(await forwardedFor(owner.url)).toBe('127.0.0.1')
    // Over TCP the owner would add the peer's address (127.0.0.1, 127.0.0.1); a unix socket has none.
    expect(await forwardedFor(other.url)).toBe('127.0.0.1')

    const forbidden = {
      status: 403,
      body: { error: { code: 'FORBIDDEN', message: 'this socket serves the gateways of the cluster only' } },
    }
    expect(await onSocket(socket, '/orgs/acme/plugins/echo/items/1', {})).toEqual(forbidden)
    expect(await onSocket(socket, '/admin/workers', {})).toEqual(forbidden)
    expect(
      await onSocket(socket, '/orgs/acme/plugins/echo/items/1', {
        'x-plugin-gateway-hop': '1',
        'x-plugin-gateway-secret': 'wrong-secret-0123456',
      }),
    ).toEqual({
      status: 403,
      body: { error: { code: 'FORBIDDEN', message: 'cluster requests need the cluster secret' } },
    })
    expect(
      (await onSocket(socket, '/orgs/acme/plugins/echo/items/1', { 'x-plugin-gateway-hop': '1', 'x-plugin-gateway-secret': SECRET }))
        .status,
    ).toBe(200)

    // Stopped, the owner takes its socket away; killed, it leaves it, and its next start replaces it.
    owner.proc.child.kill('SIGTERM')
    await owner.proc.exited
    expect(existsSync(socket)).toBe(false)
  })

  it('replace the socket a killed gateway left, and reach each other over it again', async () => {
    const { dir, gateways, restart } = await startCluster(2)
    const socket = join(dir, 'gateway.db.gw0.sock')
    gateways[0]!.proc.child.kill('SIGKILL')
    await gateways[0]!.proc.exited
    expect(lstatSync(socket).isSocket()).toBe(true)
    const owner = await restart(0, {})
    await enable(owner.url, 'acme', 'echo')
    expect(await forwardedFor(owner.url)).toBe('127.0.0.1') // the restarted gateway owns the key
    expect(await forwardedFor(gateways[1]!.url)).toBe('127.0.0.1')
  })

  it('reach each other over their URLs when the socket path would be too long for a socket', async () => {
    const base = await tempDir()
    const deep = join(base, 'a-directory-name-long-enough-that-the-socket-beside-the-database-passes-107-bytes')
    mkdirSync(deep)
    const { gateways } = await startCluster(2, { DATABASE_URL: `file:${join(deep, 'gateway.db')}` })
    await enable(gateways[0]!.url, 'acme', 'echo')
    expect(await forwardedFor(gateways[0]!.url)).toBe('127.0.0.1')
    expect(await forwardedFor(gateways[1]!.url)).toBe('127.0.0.1, 127.0.0.1')
    // Nor a socket under the path cut short, which libuv would listen on without a word.
    expect(readdirSync(base)).toEqual([basename(deep)])
    expect(readdirSync(deep).filter((name) => name.includes('.sock'))).toEqual([])
  })

  it('with CLUSTER_SOCKETS=off, reach each other over their URLs only', async () => {
    const { dir, gateways, repo } = await startCluster(2, { CLUSTER_SOCKETS: 'off' })
    expect(existsSync(join(dir, 'gateway.db.gw0.sock'))).toBe(false)
    expect((await repo.gateway('gw0'))?.socketPath).toBeNull()
    await enable(gateways[0]!.url, 'acme', 'echo')
    expect(await forwardedFor(gateways[0]!.url)).toBe('127.0.0.1')
    expect(await forwardedFor(gateways[1]!.url)).toBe('127.0.0.1, 127.0.0.1')
  })
})
