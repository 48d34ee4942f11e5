// Container health check: GET <path> (default /livez) on the role's probe port, exit 0 on a 2xx.
// web and `up` answer on OPEN_COWORK_CLOUD_PORT (8787); worker and scheduler on OPEN_COWORK_CLOUD_LIVENESS_PORT
// (8788), the gateway on OPEN_COWORK_GATEWAY_PORT (8790, path /health). The check tries the web port first and the
// others when nothing listens there.
const path = process.argv[2] ?? "/livez"
const ports = [process.env.OPEN_COWORK_CLOUD_PORT ?? "8787", process.env.OPEN_COWORK_CLOUD_LIVENESS_PORT, process.env.OPEN_COWORK_GATEWAY_PORT]
  .filter((port) => port !== undefined && port !== "")

const probe = async (port) => {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) })
    return response.ok ? "ok" : `status ${response.status}`
  } catch (error) {
    return `unreachable (${error?.cause?.code ?? error?.name ?? "error"})`
  }
}

const results = []
for (const port of ports) {
  const result = await probe(port)
  if (result === "ok") process.exit(0)
  results.push(`${port}: ${result}`)
}
console.error(`unhealthy: ${path} ${results.join(", ")}`)
process.exit(1)
