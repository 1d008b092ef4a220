// Runtime-agnostic observability: what app.ts may import. The prom-client and pino backends live in
// ./node (their own door), which only the Node entry imports.
export type { Metrics, RequestSample, RouteClass } from './metrics.js'
export { requestLogging } from './request-logging.js'
export type { RequestLoggingDeps } from './request-logging.js'
export { requestMetrics, routeClassOf } from './request-metrics.js'
export type { RequestMetricsDeps, ResponseStatus } from './request-metrics.js'
