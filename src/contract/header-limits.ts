/**
 * The most one hop (gateway → worker, or gateway → owning peer) adds to a request's headers, as Node's
 * HTTP parser counts them toward its limit (names and values). `host` becomes the upstream's address
 * and the client's (or, without one, the gateway's HOST) travels as x-forwarded-host: ≤ 2 × (name +
 * a DNS name and port) = 540. x-forwarded-for grows by ", <address>" (≤ 15 + 2 + 64), x-forwarded-proto
 * is ≤ 22, x-request-id ≤ 140 (a kept one has at most 128 chars), and undici may set `connection:
 * keep-alive` and `transfer-encoding: chunked` (≤ 44). That is under 850; the rest is room, which costs
 * nothing: a parser's limit is a counter, not a buffer.
 */
export const HOP_HEADER_BYTES = 1024
