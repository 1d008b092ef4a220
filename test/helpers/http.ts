// Real HTTP against a worker. `fetch` normalises paths (NOTES.md), so `rawRequest` exists for
// tests that need the exact path or bytes on the wire.
import { once } from 'node:events'
import { request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { onTestFinished } from 'vitest'

export interface JsonReply<T = unknown> {
  status: number
  headers: Headers
  body: T
}

export async function fetchJson<T = unknown>(url: string, init?: RequestInit): Promise<JsonReply<T>> {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: (text === '' ? undefined : JSON.parse(text)) as T }
}

export const postJson = <T = unknown>(url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetchJson<T>(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

export interface RawReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** One request over a fresh connection; rejects on connection errors (refused, reset, hang-up). */
export function rawRequest(options: {
  port: number
  method?: string
  path: string
  headers?: Record<string, string>
  body?: Buffer | string
  host?: string
}): Promise<RawReply> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      {
        host: options.host ?? '127.0.0.1',
        port: options.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

/**
 * A listener on port 0 that drops every connection at once: a gateway URL nothing answers at, held
 * for the whole test (a port merely found free could be taken by another process meanwhile).
 */
export async function startDroppingServer(): Promise<string> {
  const server = createServer((socket) => socket.destroy())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
