import { randomInt } from 'node:crypto'
import getPort from 'get-port'
import { GatewayError } from '../core/index.js'

export interface PortRange {
  min: number
  max: number
}

/**
 * Every port of the range once, from a random start: gateways on one host (and get-port's
 * per-process locks) then rarely race for the same port. A lost race is retried by the pool.
 */
function* fromRandomStart({ min, max }: PortRange): Generator<number> {
  const span = max - min + 1
  const start = randomInt(span)
  for (let i = 0; i < span; i++) yield min + ((start + i) % span)
}

/**
 * A free loopback port in range that no live worker holds. get-port locks what it hands out for a
 * while, so two concurrent starts never receive the same port.
 */
export async function allocatePort(range: PortRange, inUse: Iterable<number>): Promise<number> {
  const port = await getPort({ host: '127.0.0.1', port: fromRandomStart(range), exclude: inUse })
  // get-port falls back to a random port when the preferred ones are all taken.
  if (port < range.min || port > range.max) {
    throw new GatewayError('CAPACITY_EXHAUSTED', 503, `no free port in ${range.min}-${range.max}`, { retryAfterSeconds: 5 })
  }
  return port
}
