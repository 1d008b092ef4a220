// Upgrade clients for tests: a WebSocket (the `ws` package) and raw sockets, for the exact bytes of an
// upgrade, a switch that is not a WebSocket, or an answer that is not a switch. Every socket opened
// here is closed after the test.
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { onTestFinished } from 'vitest'
import WebSocket from 'ws'

export interface OpenWebSocket {
  ws: WebSocket
  /** The 101 as the client got it. */
  response: IncomingMessage
  /** Every message received, in order (armed at open, so none is missed). */
  messages: Buffer[]
  /** Resolves once `count` messages in all have arrived. */
  received(count: number): Promise<Buffer[]>
  /** Settles with the close code and reason once the connection has closed (armed at open). */
  closed: Promise<{ code: number; reason: string }>
}

/** Opens a WebSocket to url (http: or ws:); rejects with the status and body of an answer that is not a 101. */
export async function openWebSocket(url: string, headers: Record<string, string> = {}): Promise<OpenWebSocket> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers })
  onTestFinished(() => ws.terminate())
  // A failure while open also ends in 'close' (awaited as `closed`); one before the opening rejects it below.
  ws.on('error', () => {})
  const messages: Buffer[] = []
  const waiters: Array<() => void> = []
  ws.on('message', (data: Buffer) => {
    messages.push(Buffer.from(data))
    for (const w of waiters.splice(0)) w()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
  )
  const opened = once(ws, 'open') // emitted in the same tick as 'upgrade': armed first
  opened.catch(() => {}) // awaited only after a 101; a refused handshake rejects it unheard
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    ws.once('upgrade', resolve)
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => reject(new Error(`answered ${res.statusCode}: ${body}`)))
    })
    ws.once('error', reject)
  })
  await opened
  async function received(count: number): Promise<Buffer[]> {
    while (messages.length < count) await new Promise<void>((resolve) => waiters.push(resolve))
    return messages.slice(0, count)
  }
  return { ws, response, messages, received, closed }
}

/** A raw connection to 127.0.0.1:port with everything it receives collected. */
export async function rawConnection(port: number): Promise<{ socket: Socket; received: () => Buffer; ended: Promise<Buffer> }> {
  const socket = connect(port, '127.0.0.1')
  onTestFinished(() => void socket.destroy())
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const ended = new Promise<Buffer>((resolve, reject) => {
    socket.once('close', () => resolve(Buffer.concat(chunks)))
    socket.once('error', reject)
  })
  await once(socket, 'connect')
  return { socket, received: () => Buffer.concat(chunks), ended }
}

/** Sends `head` (a request head, `\r\n` line ends, without the blank line) and what follows it; resolves with all the server sent until it closed. */
export async function rawExchange(port: number, head: string, after: Buffer | string = ''): Promise<string> {
  const conn = await rawConnection(port)
  conn.socket.write(Buffer.concat([Buffer.from(`${head}\r\n\r\n`), Buffer.from(after)]))
  return (await conn.ended).toString('latin1')
}

/** An upgrade request head for path, with extra header lines. */
export const upgradeHead = (path: string, protocol: string, ...lines: string[]) =>
  [`GET ${path} HTTP/1.1`, 'host: gw.test', 'connection: Upgrade', `upgrade: ${protocol}`, ...lines].join('\r\n')

/** Status line, header map (lower-case names) and body of an HTTP/1.1 answer read off a raw socket. */
export function parseAnswer(text: string): { statusLine: string; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = text.slice(0, end < 0 ? text.length : end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let body = end < 0 ? '' : text.slice(end + 4)
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body)
  return { statusLine, headers, body }
}

function dechunk(text: string): string {
  let out = ''
  for (let at = 0; ; ) {
    const lineEnd = text.indexOf('\r\n', at)
    const size = Number.parseInt(text.slice(at, lineEnd), 16)
    if (!(size > 0)) return out
    out += text.slice(lineEnd + 2, lineEnd + 2 + size)
    at = lineEnd + 2 + size + 2
  }
}
