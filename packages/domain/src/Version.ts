/** The version every role reports (heartbeats, diagnostics). */
export const SERVICE_VERSION = "0.1.0"
