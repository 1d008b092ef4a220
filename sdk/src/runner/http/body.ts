// Bodies: buffered whole (routes get the exact bytes), bounded by maxBodyBytes.
import type { HayQuery } from '../../types.js'
import { messageOf } from '../guards.js'
import { parseForm } from './query.js'
import type { WorkerRequest } from './request.js'

const EMPTY = Buffer.alloc(0)

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: 'INVALID_JSON' | 'INVALID_FORM' | 'PAYLOAD_TOO_LARGE',
    message: string,
  ) {
    super(message)
  }
}

export function readBody(req: WorkerRequest, maxBytes: number): Promise<Buffer> {
  const length = req.headers['content-length']
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return Promise.resolve(EMPTY)
  if (length !== undefined && Number(length) > maxBytes) {
    req.resume() // drain it, so the client reads the 413 instead of a reset while still sending
    return Promise.reject(tooLarge(maxBytes))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBytes) return void chunks.push(chunk)
      cleanup()
      req.resume() // drain the rest; the reply then closes the connection
      reject(tooLarge(maxBytes))
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const cleanup = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError)
    }
    req.on('data', onData).on('end', onEnd).on('error', onError)
  })
}

const tooLarge = (maxBytes: number) => new BodyError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${maxBytes} bytes`)

/**
 * Express's parsers, reduced: JSON (application/json, +json), urlencoded forms (nested as qs does:
 * a promise only when the form has a bracketed key), else `{}`.
 */
export function parseBody(contentType: string | undefined, raw: Buffer): unknown {
  if (contentType === undefined) return {}
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? ''
  if (type === 'application/json' || type.endsWith('+json')) return parseJson(raw)
  if (type === 'application/x-www-form-urlencoded') return parseUrlencoded(raw.toString('utf8'))
  return {}
}

function parseUrlencoded(form: string): HayQuery | Promise<HayQuery> {
  const parsed = parseForm(form)
  if (!(parsed instanceof Promise)) return parsed
  return parsed.catch((err: unknown) => {
    throw err instanceof RangeError ? new BodyError(400, 'INVALID_FORM', `form body: ${err.message}`) : err
  })
}

/** An empty body is `{}`; malformed JSON is a 400. */
export function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return {}
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw new BodyError(400, 'INVALID_JSON', `malformed JSON body: ${messageOf(err)}`)
  }
}
