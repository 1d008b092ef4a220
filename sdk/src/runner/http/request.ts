import { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { HayQuery } from '../../types.js'

const EMPTY = Buffer.alloc(0)

/**
 * The request route handlers get: node:http's own class, extended with the Express subset Hay's
 * handlers use (Hay passes Express req/res), so streaming still works. Express's defaults are kept:
 * no 'trust proxy', so forwarding headers are not believed.
 */
export class WorkerRequest extends IncomingMessage {
  path = '/'
  originalUrl = ''
  /** Routes are mounted at the root, as in Hay's runner. */
  baseUrl = ''
  query: HayQuery = {}
  params: Record<string, string> = {}
  body: unknown = {}
  rawBody: Buffer = EMPTY
  /** Filled only behind a trusted proxy in Express: never here. */
  ips: string[] = []

  get(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()]
    return Array.isArray(value) ? value.join(', ') : value
  }

  header(name: string): string | undefined {
    return this.get(name)
  }

  /** The peer's address (through the gateway: the gateway's). */
  get ip(): string | undefined {
    return this.socket.remoteAddress
  }

  get protocol(): 'http' | 'https' {
    return (this.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http'
  }

  get secure(): boolean {
    return this.protocol === 'https'
  }

  /** The Host header without its port (`[::1]` kept whole). */
  get hostname(): string | undefined {
    const host = this.headers.host
    if (!host) return undefined
    const end = host.startsWith('[') ? host.indexOf(']') + 1 : 0
    const colon = host.indexOf(':', end)
    return colon === -1 ? host : host.slice(0, colon)
  }

  get xhr(): boolean {
    return this.get('x-requested-with')?.toLowerCase() === 'xmlhttprequest'
  }
}
