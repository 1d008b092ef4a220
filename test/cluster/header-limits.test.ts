// README: MAX_HEADER_BYTES in a cluster. A request a gateway accepts reaches the worker its owner runs,
// with what the forwarding gateway added (x-forwarded-*, the cluster headers) on top.
import { describe, expect, it } from 'vitest'
import { startWorker } from '../helpers/gateway-process.js'
import { parseAnswer, rawExchange } from '../helpers/upgrade.js'
import { startCluster } from './harness.js'

const ECHO_ITEM = '/orgs/acme/plugins/echo/items/1'

/** A request head Node's parser counts as exactly `bytes` toward its limit (URL, names and values). */
function headOfSize(bytes: number, path: string): string {
  const fixed = path.length + 'host'.length + 'gw.test'.length + 'connection'.length + 'close'.length + 'cookie'.length
  return [`GET ${path} HTTP/1.1`, 'host: gw.test', 'connection: close', `cookie: ${'a'.repeat(bytes - fixed)}`].join('\r\n')
}

async function exchange(url: string, head: string) {
  const answer = parseAnswer(await rawExchange(Number(new URL(url).port), head))
  return { status: Number(answer.statusLine.split(' ')[1]), headers: answer.headers, body: answer.body }
}

describe('request headers through a peer', () => {
  it('just under MAX_HEADER_BYTES reach the owner’s worker; over it and the room kept for a peer’s headers, the gateway asked refuses them (coded JSON 431)', async () => {
    const { gateways } = await startCluster(2)
    const [owner, other] = [gateways[0]!, gateways[1]!]
    await startWorker(owner.url, 'acme', 'echo', '/items/0')

    const under = await exchange(other.url, headOfSize(16_384 - 1, ECHO_ITEM))
    expect([under.status, under.body]).toEqual([200, JSON.stringify({ prefix: 'echo', id: '1', query: {} })])
    // 16384 + 1024 (a hop's headers) + 112 (the cluster headers with this secret) = 17520.
    const over = await exchange(other.url, headOfSize(17_520, ECHO_ITEM))
    expect([over.status, JSON.parse(over.body || 'null')?.error?.code]).toEqual([431, 'HEADERS_TOO_LARGE'])
  })
})
