import getPort, { portNumbers } from 'get-port'
import { GatewayError } from '../core/index.js'

export interface PortRange {
  min: number
  max: number
}

/**
 * A free loopback port in range that no live worker holds. get-port locks what it hands out for a
 * while, so two concurrent starts never receive the same port.
 */
export async function allocatePort(range: PortRange, inUse: Iterable<number>): Promise<number> {
  const port = await getPort({ host: '127.0.0.1', port: portNumbers(range.min, range.max), exclude: inUse })
  // get-port falls back to a random port when the preferred ones are all taken.
  if (port < range.min || port > range.max) {
    throw new GatewayError('CAPACITY_EXHAUSTED', 503, `no free port in ${range.min}-${range.max}`, { retryAfterSeconds: 5 })
  }
  return port
}
