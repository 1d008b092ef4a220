import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { GatewayError } from '../core/index.js'

/**
 * README: errors are always JSON, also for a request Node's HTTP parser refuses before the gateway
 * sees it (its 'clientError'). Without a listener Node writes a bare 431 or 400 itself; with one it
 * writes nothing, so this answers the way Node's default would, with our coded body.
 */
export function answerClientError(maxHeaderBytes: number) {
  return function refuseUnparsed(err: NodeJS.ErrnoException, socket: Duplex): void {
    // Node's default writes only when no answer of an earlier request on the connection has begun
    // (its _httpMessage), so as not to cut into one; nor to a connection the client reset.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage
    if (err.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) {
      const e = clientError(err.code, maxHeaderBytes)
      const body = JSON.stringify({ error: { code: e.code, message: e.message } })
      socket.write(
        `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroy(err)
  }
}

function clientError(code: string | undefined, maxHeaderBytes: number): GatewayError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new GatewayError('HEADERS_TOO_LARGE', 431, `request headers are over ${maxHeaderBytes} bytes`)
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new GatewayError('PAYLOAD_TOO_LARGE', 413, 'chunk extensions are too large')
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new GatewayError('REQUEST_TIMEOUT', 408, 'the request was not received in time')
    default:
      return new GatewayError('BAD_REQUEST', 400, 'malformed HTTP request')
  }
}
