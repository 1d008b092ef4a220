// Node-only observability backends (prom-client, pino). Never imported from app.ts or the edge entry.
export { createLogger, REDACT_PATHS } from './logger.js'
export type { LoggerOptions } from './logger.js'
export { createPrometheusMetrics } from './prometheus.js'
export type { PrometheusMetricsDeps } from './prometheus.js'
export { nodeResponseStatus } from './response-status.js'
